"""The built-in list: models checked in CI with random init (no weights are downloaded), each
with the input shape it is checked on. torchvision's need ``pip install 'linconv[models]'``;
the heads are linconv's own (:mod:`linconv.models.zoo`) and need torch only."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN", "HEADS", "TORCHVISION", "Builtin", "parse_builtin"]


@dataclass(frozen=True)
class Builtin:
    spec: str  # MODULE:FACTORY
    input_shape: tuple[int, ...]


_IMAGE = (1, 3, 224, 224)
TORCHVISION: dict[str, Builtin] = {
    name: Builtin(f"torchvision.models:{name}", _IMAGE)
    for name in ("resnet18", "squeezenet1_1", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16", "convnext_tiny")
}
HEADS: dict[str, Builtin] = {
    "resnet18_conv_head": Builtin("linconv.models.zoo:resnet18_conv_head", (1, 512, 7, 7)),
    "resnet50_conv_head": Builtin("linconv.models.zoo:resnet50_conv_head", (1, 2048, 7, 7)),
    "resnet50_conv_head_448": Builtin("linconv.models.zoo:resnet50_conv_head_448", (1, 2048, 14, 14)),
    "conv_linear_head": Builtin("linconv.models.zoo:conv_linear_head", (1, 512, 7, 7)),
}
BUILTIN: dict[str, Builtin] = {**TORCHVISION, **HEADS}
_GROUPS = {"all": BUILTIN, "torchvision": TORCHVISION, "heads": HEADS}


def parse_builtin(text: str) -> dict[str, Builtin]:
    """``all``, ``torchvision``, ``heads`` or comma-separated names of :data:`BUILTIN`."""
    chosen: dict[str, Builtin] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if part in _GROUPS:
            chosen.update(_GROUPS[part])
        elif part in BUILTIN:
            chosen[part] = BUILTIN[part]
        else:
            raise ValueError(
                "--builtin must be all, torchvision, heads or comma-separated names "
                f"among {list(BUILTIN)}, got {text!r}"
            )
    return chosen
