"""The fixed table of representative shapes that benchmarks/bench_formulations.py times and
benchmarks/fidelity.py re-measures: each shape is one linear map and the formulations that compute
it, taken from the relation records (linconv.relations: the code the properties check), plus "prebuilt" variants
that build their dense or fused weight once, outside the timed call, as a deployed model would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from linconv.converters import dense_conv_weight, fused_linear_parameters
from linconv.core.cases import Case, CaseTensors, Params
from linconv.core.geometry import ConvGeometry
from linconv.relations import get
from linconv.timing import timing_threads

__all__ = ["BATCHES", "SHAPES", "STEM_BATCHES", "THREADS", "Shape", "Variant", "prepared", "train_batch"]

# Batch 1 (inference, latency) and a training-size batch; 32 keeps the whole run on a 2-core CPU
# near 2 minutes (docs/timing.md).
BATCHES = (1, 32)


# The 224x224 stems (patch embeddings): inference and a training batch of 8; at 32 their
# backward alone took 2 s a call on this 2-core CPU under load, 40 s per benchmark with warm-up.
STEM_BATCHES = (1, 8)


def train_batch() -> int:
    return BATCHES[-1]


# Intra-op threads for every benchmark (and for fidelity.py): fixed so runs compare like with
# like, and the same as the property run's timings: LINCONV_TIMING_THREADS, default 1
# (linconv.timing explains the default).
THREADS = timing_threads()

Prepared = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Variant:
    """One formulation of a shape's map: a formulation of the shape's relation (by name) on the
    case's tensors, or a ``prebuild`` that turns them into a ready-to-call function (weights built once)."""

    formulation: str = ""
    memory_format: str = "contiguous"
    prebuild: Callable[[CaseTensors, ConvGeometry], Callable[[torch.Tensor], torch.Tensor]] | None = None


@dataclass(frozen=True)
class Shape:
    name: str
    relation: str  # the relation (linconv.relations) whose formulations these are
    geometry: ConvGeometry  # batch is replaced by each of the shape's batches
    variants: dict[str, Variant]
    head_features: int = 0
    # batch sizes (forward at each, backward at the last); 224x224 stems train at 8, which keeps
    # one backward call of the ViT stem's conv under a second on one CPU thread
    batches: tuple[int, ...] = BATCHES
    # the relation's formulation names of the pair fidelity.py compares (A, B): A / B
    pair: tuple[str, str] = ("conv2d", "flatten_linear")
    notes: str = field(default="")

    def fn(self, variant: str) -> Callable | None:
        """The relation's formulation the variant runs (None for a prebuilt one)."""
        name = self.variants[variant].formulation
        return get(self.relation).formulations[name].fn if name else None

    def case(self, batch: int, variant: str, device: str = "cpu") -> Case:
        return Case(
            replace(self.geometry, batch=batch),
            memory_format=self.variants[variant].memory_format,
            head_features=self.head_features,
            seed=0,
            device=device,
        )


def _dense_prebuilt(t: CaseTensors, g: ConvGeometry) -> Callable[[torch.Tensor], torch.Tensor]:
    weight = dense_conv_weight(t.weight, g)
    bias = None if t.bias is None else t.bias.repeat_interleave(g.out_features // g.out_channels)
    return lambda x: F.linear(x.flatten(1), weight, bias).view(x.shape[0], *g.output_shape[1:])


def _fused_prebuilt(t: CaseTensors, g: ConvGeometry) -> Callable[[torch.Tensor], torch.Tensor]:
    weight, bias = fused_linear_parameters(t.weight, t.bias, t.head_weight, t.head_bias, g)
    return lambda x: F.linear(x.flatten(1), weight, bias)


def _heads(name: str, features: int, classes: int) -> Shape:
    return Shape(
        name,
        "full_kernel",
        ConvGeometry(1, features, classes, (1, 1)),
        {"conv2d": Variant("conv2d"), "flatten_linear": Variant("flatten_linear")},
        pair=("conv2d", "flatten_linear"),
        notes="a classifier head after global pooling: 1x1 conv on [N, C, 1, 1] vs Linear on [N, C]",
    )


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        _heads("head 512->1000", 512, 1000),
        _heads("head 2048->1000", 2048, 1000),
        Shape(
            "[N,512,4,4] -> 5 classes",
            "full_kernel",
            ConvGeometry(1, 512, 5, (4, 4), kernel=4),
            {"conv2d": Variant("conv2d"), "flatten_linear": Variant("flatten_linear")},
            pair=("conv2d", "flatten_linear"),
            notes="a full-kernel conv vs flatten + Linear",
        ),
        Shape(
            "1x1 256->256 at 14x14",
            "pointwise",
            ConvGeometry(1, 256, 256, (14, 14)),
            {
                "conv2d": Variant("conv2d"),
                "conv2d channels_last": Variant("conv2d", "channels_last"),
                "linear_over_channels": Variant("linear_over_channels"),
                "linear_over_channels channels_last": Variant("linear_over_channels", "channels_last"),
            },
            pair=("conv2d", "linear_over_channels"),
            notes="channels_last makes the NHWC permute of linear_over_channels a free view",
        ),
        Shape(
            "3x3 32->32 at 8x8 pad 1",
            "general_conv",
            ConvGeometry(1, 32, 32, (8, 8), kernel=3, padding=1),
            {
                "conv2d": Variant("conv2d"),
                "unfold_matmul": Variant("unfold_matmul"),
                "dense_linear": Variant("dense_linear"),
                "dense_linear prebuilt": Variant(prebuild=_dense_prebuilt),
            },
            pair=("conv2d", "unfold_matmul"),
            notes="dense_linear builds its 2048x2048 matrix on every call, as the property checks it",
        ),
        Shape(
            "ViT-B/16 stem [N,3,224,224] -> 768",
            "patch_embedding",
            ConvGeometry(1, 3, 768, (224, 224), kernel=16, stride=16),
            {"conv": Variant("conv"), "patch_linear": Variant("patch_linear")},
            pair=("conv", "patch_linear"),
            batches=STEM_BATCHES,
            notes="Conv2d(3, 768, 16, stride=16) vs 196 patches of 768 values and one Linear(768, 768)",
        ),
        Shape(
            "ConvNeXt stem [N,3,224,224] -> 96",
            "patch_embedding",
            ConvGeometry(1, 3, 96, (224, 224), kernel=4, stride=4),
            {
                "conv": Variant("conv"),
                "conv channels_last": Variant("conv", "channels_last"),
                "patch_linear": Variant("patch_linear"),
                "patch_linear channels_last": Variant("patch_linear", "channels_last"),
            },
            pair=("conv", "patch_linear"),
            batches=STEM_BATCHES,
            notes="Conv2d(3, 96, 4, stride=4) vs 3136 patches of 48 values and one Linear(48, 96); "
            "ConvNeXt runs channels_last",
        ),
        Shape(
            "3x3 16->16 at 8x8 + Linear 1024->10",
            "composition",
            ConvGeometry(1, 16, 16, (8, 8), kernel=3, padding=1),
            {
                "conv_then_linear": Variant("conv_then_linear"),
                "fused_linear": Variant("fused_linear"),
                "fused_linear prebuilt": Variant(prebuild=_fused_prebuilt),
            },
            head_features=10,
            pair=("conv_then_linear", "fused_linear"),
            notes="fused_linear forms the fused weight (float64) on every call, as the property checks it",
        ),
    )
}


def prepared(shape: Shape, batch: int, variant: str, phase: str = "forward", device: str = "cpu") -> Prepared:
    """A no-argument callable that runs ``variant`` of ``shape`` at ``batch`` on ``device``: the
    forward without autograd, or (phase "backward") the backward alone of one recorded forward, as
    linconv.timing times them in the property run. It returns without waiting for an accelerator:
    the caller's clock synchronises (torch.utils.benchmark.timer)."""
    case = shape.case(batch, variant, device)
    t = case.build()
    g = case.geometry
    spec, fn = shape.variants[variant], shape.fn(variant)
    params = t.params
    if phase == "forward":
        if spec.prebuild is not None:
            apply = spec.prebuild(t, g)
            return lambda: _no_grad(apply, t.x)
        return lambda: _no_grad(lambda x: fn(x, params, g), t.x)
    if phase != "backward":
        raise ValueError(f"phase must be 'forward' or 'backward', got {phase!r}")
    if fn is None:
        raise ValueError(f"{variant!r} of {shape.name!r} has no backward benchmark (prebuilt weights are constants)")
    tensors = (t.x, t.weight, t.bias, t.head_weight, t.head_bias)
    x, *rest = (None if v is None else v.detach().requires_grad_(True) for v in tensors)
    grad_params = Params(*rest)
    leaves = [v for v in (x, *rest) if v is not None]
    y = fn(x, grad_params, g)
    upstream = case.upstream(tuple(y.shape))
    return lambda: torch.autograd.grad(y, leaves, upstream, retain_graph=True)


def _no_grad(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return fn(x)
