"""Agreement of a checkpoint's told options with the model's: the check, and the family names around it."""

from __future__ import annotations

from typing import Any, Mapping

from mae_transfer.checkpoints.convert import ConvertedCheckpoint
from mae_transfer.checkpoints.errors import CheckpointError
from mae_transfer.models.options import EncoderOptions


def check_options(converted: ConvertedCheckpoint, options: EncoderOptions | None) -> None:
    """Raise when an option the file tells differs from the model's (the family declared or built).

    The error names the file, each differing option with both values, and the family to declare.
    """
    if options is None:
        return
    differing = {key: (value, getattr(options, key)) for key, value in converted.told.items()
                 if hasattr(options, key) and getattr(options, key) != value}
    if not differing:
        return
    listed = ", ".join(f"{key}: file {file!r}, model {model!r}" for key, (file, model) in differing.items())
    family = converted.family or family_of_told(converted.told)
    what = f"a {family} checkpoint" if family else f"a '{converted.format}' checkpoint"
    hint = (f"build the backbone with family={family!r} (matrix backbone key 'family: {family}')" if family
            else f"declare the family: {converted.must_declare['family']}" if "family" in converted.must_declare
            else "build the backbone with options matching the file")
    key = next(iter(differing))
    raise CheckpointError(
        f"the model does not match {what}: {listed}; {hint}, or correct the declared family/activation/eps",
        file=converted.source, key=key, expected=differing[key][1], found=differing[key][0],
    )


def family_of_told(told: Mapping[str, Any]) -> str | None:
    """The one family whose options agree with everything ``told`` says, else None."""
    from mae_transfer.models.options import FAMILIES

    matches = [name for name, spec in FAMILIES.items()
               if all(getattr(spec.options, key, value) == value for key, value in told.items() if key != "mlp")]
    return matches[0] if len(matches) == 1 else None


def family_of_options(options: EncoderOptions | None) -> str | None:
    """The family whose options the model was built with (SwiGLU aside), or None for custom options."""
    from dataclasses import replace

    from mae_transfer.models.options import FAMILIES

    if options is None:
        return None
    plain = replace(options, mlp="mlp")
    return next((name for name, spec in FAMILIES.items()
                 if replace(spec.options, activation=plain.activation, norm_eps=plain.norm_eps) == plain), None)


def declared_options(converted: ConvertedCheckpoint, options: EncoderOptions | None) -> dict[str, Any]:
    """The model's values of the options the file does not tell (what the user's family declared)."""
    if options is None:
        return {}
    keys = ("activation", "norm_eps", "pos_rule")
    return {key: getattr(options, key) for key in keys if key not in converted.told}
