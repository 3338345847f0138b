"""Override keys checked against a config: a key that names nothing would be silently ignored.

The planner sets keys in each cell's config (data roots, batch, lr, the matrix's overrides);
``doctor`` and the cell runner refuse the ones the config does not have (typos) before training.
"""

from __future__ import annotations

from pathlib import Path


def unknown_override_keys(config: Path, keys: list[str]) -> list[str] | None:
    """Why each override key would be ignored by ``config`` (None when mmengine is unavailable).

    A dotted key must name an existing path in the parsed config: every part but the last must
    exist (a list takes a numeric index; the top-level keys mmengine's runner reads with a
    default are exempt). The last part may be new (a keyword argument a config leaves at its
    default, ``model.backbone.embed_dim``) unless it is close to an existing key of its parent
    (``train_cfg.max_epoch`` for ``max_epochs``), which is taken for a typo.
    ``optim_wraper.optimizer.lr`` (a typo of ``optim_wrapper``) would create a new key that
    nothing reads; it is named here with the closest existing key.
    """
    try:
        from mmengine.config import Config
    except ImportError:
        return None
    cfg = Config.fromfile(str(config)).to_dict()
    return [problem for key in keys if (problem := override_key_problem(cfg, key)) is not None]


# Top-level keys mmengine's Runner.from_cfg reads with a default when a config leaves them out.
RUNNER_OPTIONAL_KEYS = frozenset({"randomness", "env_cfg", "load_from", "resume", "default_scope", "log_level",
                                  "launcher", "work_dir", "experiment_name", "custom_hooks", "default_hooks",
                                  "visualizer", "log_processor", "auto_scale_lr", "model_wrapper_cfg", "cfg"})


def override_key_problem(cfg: dict, key: str) -> str | None:
    """Why ``key`` names nothing in the config mapping ``cfg`` (None when it does)."""
    import difflib

    node = cfg
    parts = key.split(".")
    if parts[0] not in cfg and parts[0] in RUNNER_OPTIONAL_KEYS:
        return None
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the top level"
        last = depth == len(parts) - 1
        if isinstance(node, (list, tuple)):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            return f"override {key}: {where} is a list of {len(node)}; {part!r} is not an index in it"
        if not isinstance(node, dict):
            return f"override {key}: {where} is {type(node).__name__}, not a mapping; {part!r} cannot be set in it"
        if part in node:
            node = node[part]
            continue
        close = difflib.get_close_matches(part, [str(k) for k in node], n=1, cutoff=0.75)
        hint = f"; did you mean {'.'.join([*parts[:depth], close[0]])}?" if close else ""
        if last and ("type" in node or not close):
            # a keyword argument the config leaves at its default (model.backbone.embed_dim, a
            # registered type's option): a new key, unless it is one edit from an existing one
            if not close:
                return None
        return f"override {key}: {part!r} does not exist in {where}, so the override would be ignored{hint}"
    return None


def missing_keys(config: Path, keys: list[str]) -> list[str] | None:
    """The dotted keys absent from the parsed config (None when mmengine is unavailable)."""
    try:
        from mmengine.config import Config
    except ImportError:
        return None
    cfg = Config.fromfile(str(config)).to_dict()
    missing = []
    for key in keys:
        node = cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing
