"""Every name mae_transfer registers carries the MAETransfer prefix and is its class's name."""

from __future__ import annotations

import importlib
import pkgutil

import mmdet.registry
import mmengine.registry
import mmseg.registry
from mmengine.registry import Registry

import mae_transfer.integrations


def _registered_by_mae_transfer() -> list[tuple[str, str, type]]:
    for module in pkgutil.iter_modules(mae_transfer.integrations.__path__):
        importlib.import_module(f"mae_transfer.integrations.{module.name}")
    registries = {
        id(value): value
        for scope in (mmengine.registry, mmdet.registry, mmseg.registry)
        for value in vars(scope).values()
        if isinstance(value, Registry)
    }
    return [
        (f"{registry.scope}.{registry.name}", name, cls)
        for registry in registries.values()
        for name, cls in registry.module_dict.items()
        # ours by where the class lives, or by the name (a third-party class registered by us)
        if getattr(cls, "__module__", "").startswith("mae_transfer.") or name.startswith("MAETransfer")
    ]


def test_every_registered_name_has_the_prefix_and_is_the_class_name() -> None:
    registered = _registered_by_mae_transfer()
    assert {name for _, name, _ in registered} >= {"MAETransferViT", "MAETransferSegViT", "MAETransferClassifier"}
    wrong = [
        f"{where}: {name!r} -> {cls.__module__}.{cls.__name__}"
        for where, name, cls in registered
        if not name.startswith("MAETransfer") or name != cls.__name__
    ]
    assert not wrong, "registered names without the MAETransfer prefix or unlike their class:\n" + "\n".join(wrong)
