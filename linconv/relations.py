"""Relations: which formulations must compute the same map, and what each sum's length is.

A relation names its formulations (each with the torch ops it runs, so the error model knows
whether TF32 may round its inputs), a float64 reference, the tensors whose gradients it
compares, and the reduction length of each compared tensor. Fault injection replaces one entry
of ``formulations`` (one side of the relation); the reference is never replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from linconv import converted as cv
from linconv import formulations as f
from linconv.geometry import ConvGeometry

__all__ = ["RELATIONS", "FormulationSpec", "Relation", "get_relation"]


@dataclass(frozen=True)
class FormulationSpec:
    fn: f.Formulation
    ops: tuple[str, ...]  # "conv" and/or "matmul": which kernels may round fp32 inputs (TF32)
    # gradients (by tensor name) whose sums run in the storage dtype, not in float32: the
    # backward of a gather/index_put is a scatter-add into a tensor of the parameter's dtype
    storage_accumulation: tuple[str, ...] = ()
    # a linconv.partial_sums rule ("fold", "slow_conv"): backward kernels that add partial sums
    # in the storage dtype for float16/bfloat16 on the CPU
    partial_sums: str = ""


@dataclass(frozen=True)
class Relation:
    name: str
    statement: str
    formulations: dict[str, FormulationSpec]
    reference: f.Formulation
    grads: tuple[str, ...]
    reductions: Callable[[ConvGeometry, int], dict[str, int]]
    notes: str = field(default="")

    def with_formulation(self, name: str, fn: f.Formulation) -> Relation:
        """This relation with formulation ``name`` replaced (fault injection, experiments)."""
        if name not in self.formulations:
            raise ValueError(f"formulation must be one of {tuple(self.formulations)}, got {name!r}")
        entries = dict(self.formulations)
        entries[name] = replace(entries[name], fn=fn)
        return replace(self, formulations=entries)


def _conv_reductions(g: ConvGeometry, head_features: int = 0) -> dict[str, int]:
    """Terms per sum: output = C/g*kh*kw; grad x <= O/g * (output positions a tap can reach);
    grad weight and bias = N*Ho*Wo."""
    out_h, out_w = g.output_size()
    taps = g.kernel[0] * g.kernel[1]
    return {
        "output": g.reduction_length(),
        "x": g.out_per_group * min(taps, out_h * out_w),
        "weight": g.batch * out_h * out_w,
        "bias": g.batch * out_h * out_w,
    }


def _composition_reductions(g: ConvGeometry, head_features: int) -> dict[str, int]:
    """Two sums in a row: their lengths add (errors of the first pass through |W2|)."""
    conv = _conv_reductions(g)
    return {
        "output": conv["output"] + g.out_features,
        "x": conv["x"] + head_features,
        "weight": conv["weight"] + head_features,
        "bias": conv["bias"] + head_features,
        # the fused side reaches the head weight through the dense product: + in_features terms
        "head_weight": g.batch + g.in_features,
        "head_bias": g.batch,
    }


_CONV = ("conv",)
_MATMUL = ("matmul",)

RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation(
            name="pointwise",
            statement="Conv2d(C, O, 1) equals Linear(C, O) over the channel axis "
            "(strided: on x[:, :, ::s, ::s]; grouped: block-diagonal)",
            formulations={
                "conv2d": FormulationSpec(f.conv2d, _CONV, partial_sums="slow_conv"),
                "linear_over_channels": FormulationSpec(f.linear_over_channels, _MATMUL),
            },
            reference=f.conv2d,
            grads=("x", "weight", "bias"),
            reductions=_conv_reductions,
        ),
        Relation(
            name="full_kernel",
            statement="a Conv2d whose kernel covers the input equals Linear(C*H*W, O) on x.flatten(1)",
            formulations={
                "conv2d": FormulationSpec(f.conv2d_flat, _CONV, partial_sums="slow_conv"),
                "flatten_linear": FormulationSpec(f.flatten_linear, _MATMUL),
            },
            reference=f.conv2d_flat,
            grads=("x", "weight", "bias"),
            reductions=_conv_reductions,
        ),
        Relation(
            name="general_conv",
            statement="any Conv2d equals unfold + matmul and a dense Linear on the flattened input",
            formulations={
                "conv2d": FormulationSpec(f.conv2d, _CONV, partial_sums="slow_conv"),
                "unfold_matmul": FormulationSpec(f.unfold_matmul, _MATMUL, partial_sums="fold"),
                "dense_linear": FormulationSpec(f.dense_linear, _MATMUL, storage_accumulation=("weight",)),
            },
            reference=f.conv2d,
            grads=("x", "weight", "bias"),
            reductions=_conv_reductions,
        ),
        Relation(
            name="composition",
            statement="Linear . Conv2d with no activation equals one fused Linear",
            formulations={
                "conv_then_linear": FormulationSpec(f.conv_then_linear, ("conv", "matmul"), partial_sums="slow_conv"),
                "fused_linear": FormulationSpec(f.fused_linear, _MATMUL),
            },
            reference=f.conv_then_linear,
            grads=("x", "weight", "bias", "head_weight", "head_bias"),
            reductions=_composition_reductions,
            notes="the fused parameters are formed differentiably, so gradients reach both layers' parameters",
        ),
        # What the public converters hand out: the converted module's output and input gradient
        # (its parameters are new tensors, so parameter gradients do not reach the source).
        Relation(
            name="converted_pointwise",
            statement="conv1x1_to_linear(conv) over the channel axis equals conv",
            formulations={"converted_linear": FormulationSpec(cv.converted_pointwise, _MATMUL)},
            reference=f.conv2d,
            grads=("x",),
            reductions=_conv_reductions,
        ),
        Relation(
            name="converted_full_kernel",
            statement="full_kernel_conv_to_linear(conv) on x.flatten(1) equals conv",
            formulations={"converted_linear": FormulationSpec(cv.converted_full_kernel, _MATMUL)},
            reference=f.conv2d_flat,
            grads=("x",),
            reductions=_conv_reductions,
        ),
        Relation(
            name="converted_dense",
            statement="conv_to_dense_linear(conv, input_size) on x.flatten(1) equals conv",
            formulations={"converted_linear": FormulationSpec(cv.converted_dense, _MATMUL)},
            reference=f.conv2d,
            grads=("x",),
            reductions=_conv_reductions,
        ),
        Relation(
            name="converted_fused",
            statement="fuse_linear_after_conv(conv, linear, input_size) equals linear(conv(x).flatten(1))",
            formulations={"converted_linear": FormulationSpec(cv.converted_fused, _MATMUL)},
            reference=f.conv_then_linear,
            grads=("x",),
            reductions=_composition_reductions,
        ),
        Relation(
            name="composition_with_activation",
            statement="negative control: with a ReLU between conv and Linear, the fused Linear does NOT match",
            formulations={"fused_linear": FormulationSpec(f.fused_linear, _MATMUL)},
            reference=f.conv_relu_linear,
            grads=(),
            reductions=_composition_reductions,
        ),
    )
}


def get_relation(name: str) -> Relation:
    try:
        return RELATIONS[name]
    except KeyError:
        raise ValueError(f"relation must be one of {tuple(RELATIONS)}, got {name!r}") from None
