"""The catalogue of known upstream bugs: each a signature (which cases it affects), a reproducer
(a Python program that exits non-zero where the bug is present) and where it was seen.

Whether a bug is present on this torch build and CPU is decided by running its reproducer
(linconv.known_bugs.reproduce), not by the versions below: ``observed_on`` / ``observed_isa`` /
``observed_cpu_flags`` record where it was seen, so that the tracking test
(properties/test_known_bugs.py) can say when a bug stops reproducing where it was seen (fixed:
drop or narrow the entry) or reproduces somewhere new (add it). oneDNN picks its kernels by
instruction set, so where a bug shows depends on the CPU as much as on the torch version.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry

__all__ = ["KNOWN_BUGS", "KnownBug", "cpu_flags", "get_bug"]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@dataclass(frozen=True)
class KnownBug:
    name: str
    link: str
    summary: str
    # "crash" (the process dies), "wrong result", "error" (raises on a legal input),
    # "compile error" (torch.compile raises) or "compile hang" (torch.compile does not end)
    kind: str
    observed_on: tuple[str, ...]  # torch versions where the reproducer failed here
    reproducer: str  # a Python program; exits 0 when the bug is absent
    env: tuple[tuple[str, str], ...] = ()
    observed_isa: tuple[str, ...] = ()  # torch CPU capabilities it was seen with (empty: any)
    observed_cpu_flags: tuple[str, ...] = ()  # /proc/cpuinfo flags all present where it was seen
    # a crash seen only on some CPUs may still be avoided on all of them, where the CPUs it spares
    # are not known well enough to risk the whole run
    avoid_everywhere: bool = False
    # the execution lanes (linconv.lanes.execution) where the bug shows; empty: every lane (a bug of
    # an ATen or oneDNN kernel shows in compiled lanes too, which call the same kernel)
    lanes: tuple[str, ...] = ()
    # the relations whose formulations reach it; empty: every relation (a bug of how a formulation's
    # code compiles, not of a kernel every formulation calls, needs its relation to match)
    relations: tuple[str, ...] = ()
    # a regular expression on what the bug raises ("TypeName: message"): a compile error whose inputs
    # no signature on the case can describe (it depends on which sizes dynamo made symbolic, i.e. on
    # the examples compiled before) is recognised by its error instead, after it raised
    # (linconv.known_bugs.known_error); such a bug matches no case beforehand
    error: str = ""

    def shows_in(self, execution: str, relation: str | None = None) -> bool:
        """Whether the bug can show in execution lane ``execution`` (and, when it names relations,
        in relation ``relation``: None, an unknown relation, matches none of them)."""
        return (not self.lanes or execution in self.lanes) and (not self.relations or relation in self.relations)

    def expected_here(self, torch_version: str) -> bool:
        """Whether the reproducer is known to fail with this torch on this CPU."""
        isa = torch.backends.cpu.get_cpu_capability()
        return (
            torch_version in self.observed_on
            and (not self.observed_isa or isa in self.observed_isa)
            and set(self.observed_cpu_flags) <= cpu_flags()
        )

    def matches(self, case: Case) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class OneDnn1x1BackwardWeights(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            case.device == "cpu"
            and case.dtype in ("float32", "bfloat16")
            and case.memory_format == "channels_last"
            and set(g.kernel) == {1}
            and set(g.stride) != {1}
            and g.in_per_group < 16  # oneDNN's channel block: 8 on AVX2, 16 on AVX-512
        )


def _padding_only_tap(size: int, pad_lo: int, kernel: int, stride: int, dilation: int, out: int) -> bool:
    """Whether some kernel offset reads zero padding at every output position (never the input)."""
    return any(not any(pad_lo <= o * stride + j * dilation < pad_lo + size for o in range(out)) for j in range(kernel))


@dataclass(frozen=True)
class OneDnnAmxBf16PaddingOnlyTap(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        if case.device != "cpu" or case.dtype != "bfloat16" or g.padding_mode != "zeros":
            return False  # other padding modes are padded by linconv before the conv: no conv padding
        return any(
            _padding_only_tap(n, before, k, s, d, o)
            for n, (before, _), k, s, d, o in zip(
                g.size, g.pads(), g.kernel, g.stride, g.dilation, g.output_size(), strict=True
            )
        )


@dataclass(frozen=True)
class GroupedConvWeightGradSize1Strides(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            case.device == "cpu"
            # float32 too where the weight is a view (sliced, ...), seen with one thread on the AMD
            # EPYC Zen 4 (thorough seed 5 of 2026-12-06: 30 of 30 with one thread, 0 with two)
            and (case.dtype in ("float64", "bfloat16", "float16") or case.param_layout != "dense")
            and case.input_view == "size1_strides"
            and case.memory_format == "channels_last"
            and g.rank == 2  # conv1d, conv3d and transposed convs: 0 wrong in 150 / 140 / 300 (docs/robustness.md)
            and not g.transposed
            and g.groups > 1
            and g.in_per_group >= 2
            and 1 in (g.batch, *g.size)
        )


@dataclass(frozen=True)
class SlowConv2dGradWeightNotContiguous(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        if not (
            case.device == "cpu"
            and case.memory_format == "channels_last"
            and case.param_layout in ("permuted", "size1_strides")
            and g.rank == 2
            and not g.transposed
        ):
            return False
        # the weight as the case lays it out: channels_last-contiguous, not contiguous (a size-1
        # dimension's stride is non-canonical); strides only, on a CPU float64 stand-in
        w = replace(case, device="cpu", dtype="float64").layout_param(torch.empty(g.weight_shape, dtype=torch.float64))
        return w is not None and not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class ConvTransposeChannelsLastStridedWeight(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        if not (case.device == "cpu" and case.memory_format == "channels_last" and g.transposed and g.rank >= 2):
            return False
        if case.param_layout == "dense":
            return False
        # the weight as the case lays it out (strides only, on a CPU float64 stand-in)
        w = replace(case, device="cpu", dtype="float64").layout_param(torch.empty(g.weight_shape, dtype=torch.float64))
        return w is not None and not w.is_contiguous()


@dataclass(frozen=True)
class OneDnnAmxBf16StridedSingleColumn(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        out = g.output_size()
        return (
            case.device == "cpu"
            and case.dtype == "bfloat16"
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
            and g.rank >= 2
            and g.stride[-1] > 1
            and out[-1] == 1
            and math.prod(out[:-1]) > 1
        )


# Found by linconv's calibration run (python -m linconv calibrate with OMP_NUM_THREADS=1):
# glibc aborted with "corrupted double-linked list" in backward. Reduced by hand to the program
# below; crashes on torch 2.13.0 (CPU wheel) and 2.14.1 (CUDA wheel, on the CPU) on an AVX2 EPYC.
# On an AVX-512 Xeon (torch 2.13.0, 2026-11-30) that program survives, but thorough seed 4 of the
# flake check crashed a worker with x [3, 5, 12, 6] and a [3, 5, 1, 1] weight, both channels_last,
# stride 2: it segfaults there with 2 threads (and the xdist run had 1). So the signature has no
# thread condition any more, and the reproducer runs both variants. Run 4 of the flake check then
# aborted ("corrupted size vs. prev_size") on the same pattern in bfloat16 (x [1, 2, 6, 9], weight
# [22, 2, 1, 1], stride (2, 1), dilation (2, 2), 1 or 2 threads; float16 and float32 survive that
# shape, and so does bfloat16 without the (mathematically idle) dilation, so it may be a sibling
# bug in another oneDNN kernel): the signature covers bfloat16 too and the reproducer ends with it.
# Avoided on every CPU (a crash would end the whole run, report and capture included); only the
# tracking test is CPU-aware.
_ONEDNN_6035 = """
import torch, torch.nn.functional as F
torch.set_num_threads(1)  # the AVX2 variant
x = torch.randn(2, 3, 12, 6).contiguous(memory_format=torch.channels_last)
w = torch.randn(27, 3, 1, 1, requires_grad=True)
for _ in range(300):
    y = F.conv2d(x, w, None, stride=(2, 2))
    y.backward(torch.randn_like(y))
torch.set_num_threads(2)  # the AVX-512 variant
x = torch.randn(3, 5, 12, 6).contiguous(memory_format=torch.channels_last)
w = torch.randn(3, 5, 1, 1).contiguous(memory_format=torch.channels_last).requires_grad_()
for _ in range(300):
    y = F.conv2d(x, w, None, stride=(2, 2))
    y.backward(torch.randn_like(y))
for _ in range(300):  # the bfloat16 variant (AVX-512 + AMX)
    x = torch.randn(1, 2, 6, 9).bfloat16().contiguous(memory_format=torch.channels_last)
    w = torch.randn(22, 2, 1, 1).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
    y = F.conv2d(x, w, None, stride=(2, 1), dilation=(2, 2))
    y.backward(torch.randn_like(y))
print("no crash")
"""

# Found by the thorough profile, seed 1, on a Sapphire Rapids-class Xeon (AMX) with torch 2.13.0
# (docs/robustness.md): bfloat16 conv2d forward with stride (1, s>1) and one output column is
# wrong by up to 1e29 (it reads memory it never wrote; values change from run to run), in oneDNN
# v3.12's brg_conv_fwd:avx10_1_512_amx. Grid over 1,500 random convs: only bfloat16, only
# stride_h == 1 < stride_w, output width 1 and output height > 1 (38% of those are wrong; none of
# any other shape class, float16 or float32). Thorough seed 7 of the final run then hit it with
# stride (2, 2) (bfloat16, reflect-padded 13x3 input, kernel 3x3 dilated (2, 1), output 5x1: 3.6e37),
# so the signature follows upstream's condition instead: stride_w > 1 and output width 1 (any
# stride_h). pytorch/pytorch#169688 and the open fix #188426 name the
# same kernel and condition for conv3d only (their guard checks 5-D inputs): conv2d is affected too.
_ONEDNN_AMX_BF16_OW1 = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
x = torch.randn(1, 1, 6, 7).bfloat16()
w = torch.randn(1, 1, 2, 4).bfloat16()
y = F.conv2d(x, w, None, stride=(1, 2), dilation=(1, 2)).double()
ref = F.conv2d(x.double(), w.double(), None, stride=(1, 2), dilation=(1, 2))
scale = F.conv2d(x.double().abs(), w.double().abs(), None, stride=(1, 2), dilation=(1, 2))
error = float(((y - ref).abs() / (scale * 2.0**-6)).max())
print("error / (|W||x| * 2**-6) =", error)
sys.exit(1 if error > 1 else 0)
"""

# Found by the thorough profile, seed 1, once the bug above was avoided (same machine, torch
# 2.13.0): the bfloat16 weight gradient of N1 C1 1x1 -> O1 k1x2 s1x2 p0x1 was -9e10 for the tap
# that only ever reads zero padding (its true gradient is 0). A fork-per-case grid of 2,000
# random bfloat16 convs (forward and backward) then found 2 segmentation faults in backward and 1
# more wrong weight gradient, each with a kernel offset that reads padding at every output
# position; of the 581 grid convs with such a tap, those 3 failed (float16 and float32: none).
# The signature below is that superset: it cannot be narrowed further from 3 events.
_ONEDNN_AMX_BF16_PADDING_TAP = """
import sys, torch, torch.nn.functional as F
torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.randn(1, 1, 1, 1).bfloat16().requires_grad_()
w = torch.randn(1, 1, 1, 2).bfloat16().requires_grad_()
F.conv2d(x, w, None, stride=(1, 2), padding=(0, 1)).sum().backward()
print("weight gradient of the padding-only tap (exactly 0 in float64):", float(w.grad[0, 0, 0, 0]))
wrong = float(w.grad[0, 0, 0, 0]) != 0.0
# the same tap in a channels_last conv3d: garbage on AVX-512 bf16 CPUs without AMX too (AMD EPYC
# Zen 4, 2026-12-06: 22 of 40 calls; thorough seed 2 drew it in composition_3d and conv_transpose1d)
for _ in range(20):
    x = torch.randn(1, 2, 1, 1, 1).bfloat16().contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    w = torch.randn(1, 2, 1, 1, 2).bfloat16().contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    F.conv3d(x, w, None, stride=(1, 1, 2), padding=(0, 0, 1)).sum().backward()
    wrong = wrong or float(w.grad[0, :, 0, 0, 0].abs().max()) != 0.0
print("wrong:", wrong)
for _ in range(20):  # the segmentation fault of the grid, last: it ends the process
    x = torch.randn(3, 4, 1, 7).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(1, 4, 2, 4).bfloat16().requires_grad_()
    F.conv2d(x, w, None, padding=(1, 0), dilation=(2, 2)).sum().backward()
sys.exit(1 if wrong else 0)
"""

# Found by a benign perturbation of the fault benchmark (earlier session, AMD EPYC), reproduced
# here (Xeon, 2026-11-30) and drawn by the properties since input_view 'size1_strides': a grouped
# conv (>= 2 input channels per group) with a channels_last weight and a channels_last input whose
# size-1 dimension has a non-canonical stride (batch stride of an N=1 input) computes a wrong
# weight gradient on the CPU. Grid of 1,500 float64 convs, N=1, half the canonical batch stride:
# 312 of 414 such convs wrong, none with a contiguous weight, groups=1 or one channel per group.
# float64 on every CPU seen (ATen's kernel); bfloat16/float16 on the AVX2 EPYC, not on this Xeon.
_GROUPED_SIZE1_STRIDES = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
x0 = torch.randn(1, 4, 3, 3, dtype=torch.float64)
w0 = torch.randn(4, 2, 2, 2, dtype=torch.float64)
x = torch.empty_strided((1, 4, 3, 3), (18, 1, 12, 4), dtype=torch.float64).copy_(x0)  # batch stride 18, not 36
w = w0.contiguous(memory_format=torch.channels_last)
grads = []
for xi, wi in ((x, w), (x0, w0)):
    xi, wi = xi.detach().requires_grad_(), wi.detach().requires_grad_()
    F.conv2d(xi, wi, groups=2).sum().backward()
    grads.append(wi.grad)
error = float((grads[0] - grads[1]).abs().max())
print("weight gradient difference:", error)
sys.exit(1 if error > 1e-9 else 0)
"""


def _cpu_channels_last_conv(case: Case, dtypes: tuple[str, ...]) -> bool:
    """The common ground of the oneDNN layout bugs: a CPU, non-transposed conv of rank >= 2 with a
    channels_last input, in one of ``dtypes``."""
    g = case.geometry
    return (
        case.device == "cpu"
        and case.dtype in dtypes
        and case.memory_format == "channels_last"
        and g.rank >= 2
        and not g.transposed
    )


@dataclass(frozen=True)
class GroupedConvChannelsLastSize1StridedWeight(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            _cpu_channels_last_conv(case, ("float32", "bfloat16"))  # float16, float64: 0 wrong in 29 and 43
            and case.param_layout == "size1_strides"
            and g.groups > 1
            and 1 in g.weight_shape  # else the layout leaves every stride canonical
        )


# Found by thorough seed 1 on 2026-12-06 (AMD EPYC Zen 4, AVX-512, torch 2.13.0 and 2.14.1), once the
# parameter-layout axis met Conv3d: a grouped conv2d/conv3d forward with a channels_last input and a
# channels_last weight whose size-1 dimensions carry non-canonical strides (legal; what a weight
# sliced or squeezed from a larger parameter can have) gives wrong outputs, errors up to 4x the
# output's magnitude. A grid of 3,000 random conv1d/2d/3d (seed 0): wrong in 36 of 70 such
# float32/bfloat16 convs with a size-1 weight dimension; 0 of 29 in float16, 0 of 43 in float64;
# never with groups == 1, a contiguous input or weight, or no size-1 weight dimension.
_GROUPED_CHANNELS_LAST_SIZE1_WEIGHT = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
x = torch.randn(1, 4, 1, 1, 2).contiguous(memory_format=torch.channels_last_3d)
w0 = torch.randn(2, 2, 1, 1, 2)
w = w0.contiguous(memory_format=torch.channels_last_3d)
w = w.as_strided(w.shape, (4, 1, 2, 2, 2))  # the size-1 dimensions' strides halved: same elements
error = float((F.conv3d(x, w, groups=2).double() - F.conv3d(x.double(), w0.double(), groups=2)).abs().max())
print("output difference:", error)
sys.exit(1 if error > 1e-4 else 0)
"""


@dataclass(frozen=True)
class Bf16Strided1x1DilatedInputGrad(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            _cpu_channels_last_conv(case, ("bfloat16",))
            and set(g.kernel) == {1}
            and max(g.stride) > 1
            and max(g.dilation) > 1  # a dilation on a 1x1 kernel: legal, and meaningless
        )


# Found by thorough seed 5 on 2026-12-06 (AMD EPYC Zen 4, AVX-512 bf16, torch 2.13.0 and 2.14.1): the
# input gradient of a bfloat16 channels_last 1x1 conv2d with a stride and a dilation is wrong (grad x
# 5.1 where the truth is -0.03). Measured: 10 of 10 draws wrong for stride (1, 2) or (2, 1) with
# any dilation > 1, at 5 to 64 channels; 0 with dilation 1, stride 1, a contiguous layout, float32
# or float16; stride (2, 2) and (1, 3) were right at [1, C, 10, 6]. The signature avoids every
# strided, dilated bfloat16 channels_last 1x1 conv (a superset: the region is not fully mapped).
_BF16_STRIDED_1X1_DILATED = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
x = torch.randn(1, 16, 10, 6).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
w = torch.randn(1, 16, 1, 1).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
y = F.conv2d(x, w, stride=(1, 2), dilation=(1, 2))
gy = torch.randn(y.shape).bfloat16()
gx, = torch.autograd.grad(y, x, gy)
ref = torch.nn.grad.conv2d_input(x.shape, w.detach().double(), gy.double(), stride=(1, 2), dilation=(1, 2))
error = float((gx.double() - ref).abs().max())
print("input gradient error:", error)
sys.exit(1 if error > 0.1 else 0)
"""


@dataclass(frozen=True)
class Bf16Conv3dKernelOverInputWeightGrad(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            _cpu_channels_last_conv(case, ("bfloat16",))
            and g.rank == 3
            and g.padding_mode == "zeros"
            and any(k > n for k, n in zip(g.kernel, g.size, strict=True))
        )


# Found by thorough seed 3 on 2026-12-06 (AMD EPYC Zen 4, AVX-512 bf16, torch 2.13.0 and 2.14.1): the
# weight gradient of a bfloat16 channels_last_3d conv3d whose kernel is longer than the input in a
# dimension (zero padding makes up the rest) is wrong (-0.086 where the truth is 0.035). A grid of
# 400 random convs: wrong in 14 of 167 such padded conv3d, 0 of 109 such conv2d, 0 of 124 with the
# kernel no longer than the input; contiguous or float32: 0 of 10.
_BF16_CONV3D_KERNEL_OVER_INPUT = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
wrong = 0
for _ in range(10):
    x = torch.randn(1, 2, 3, 1, 1).bfloat16().contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    w = torch.randn(1, 2, 5, 1, 1).bfloat16().contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    y = F.conv3d(x, w, padding=(2, 0, 0))
    gy = torch.randn(y.shape).bfloat16()
    gw, = torch.autograd.grad(y, w, gy)
    ref = torch.nn.grad.conv3d_weight(x.detach().double(), w.shape, gy.double(), padding=(2, 0, 0))
    wrong += float((gw.double() - ref).abs().max()) > 0.05 * (float(ref.abs().max()) + 1e-3)
print("wrong weight gradients:", wrong, "of 10")
sys.exit(1 if wrong else 0)
"""


@dataclass(frozen=True)
class FreezingFloat64ConvPrepack(KnownBug):
    def matches(self, case: Case) -> bool:
        return case.device == "cpu" and case.dtype == "float64" and case.geometry.rank >= 2


# Found by the compiled-freezing execution lane's first run (torch 2.13.0, CPU): with inductor
# freezing, constant folding prepacks a conv2d/conv3d weight for oneDNN
# (mkldnn._reorder_convolution_weight) whatever its dtype, and oneDNN has no float64: compiling any
# float64 Conv2d/Conv3d model for inference fails (BackendCompilerFailed, "itensor_view_from_dense
# expects float/bfloat16/half/int8/fp8 tensor inputDouble"). Conv1d (not prepacked) and float64
# Linear (its twin, pytorch/pytorch#121175, fixed in 2.3) compile. An error, not a crash: the
# signature is avoided only in that lane, where the reproducer fails.
_FREEZING_FLOAT64_CONV = """
import sys, torch
import torch._inductor.config as config
config.freezing = True
failed = []
for conv, shape in ((torch.nn.Conv2d(2, 3, 1), (1, 2, 3, 3)), (torch.nn.Conv3d(2, 3, 1), (1, 2, 3, 3, 3))):
    model = conv.double().eval()
    torch._dynamo.reset()
    with torch.no_grad():
        try:
            torch.compile(model)(torch.randn(shape, dtype=torch.float64))
        except Exception as exc:
            failed.append(type(model).__name__)
            print(type(model).__name__, type(exc).__name__, str(exc).strip().splitlines()[1][:120])
sys.exit(1 if failed else 0)
"""

# Found by the weight-layout axis (Case.param_layout, issue 14) on its first run: a conv2d with
# one output channel, a channels_last input and a weight whose size-1 dimension (O = 1) has a
# non-canonical stride (an HWIO checkpoint permuted back, or odd size-1 strides) raises
# "slow_conv2d: grad_weight must be contiguous" in backward (float64, bfloat16, float16; float32
# goes through oneDNN and passes). The weight is legal: channels_last-contiguous, its O stride never
# used. Grid of 3,360 layouts (ranks 1-3, conv and transposed, O/C_in/kernel/groups 1 or 2, every
# param_layout and memory format, 4 dtypes): these 6 raised, all 2-D, groups 1, O = 1, channels_last.
# The ci property run then hit it in float32 (classifier head, N1 C2 1x2 -> O1; and grouped, O/g = 1
# with a one-row kernel): ATen takes slow_conv2d for small float32 convs too. A second grid (1,152
# channels_last 2-D layouts, batch 1-2, float64/float32/bfloat16): 79 raised, every one with a
# weight that is channels_last-contiguous but not contiguous (a size-1 dimension's stride
# non-canonical), which is the signature (120 match; the other 41 take oneDNN and pass).
# The class of pytorch/vision#6001 (fixed in 2022 for another stride pattern).
_SLOW_CONV2D_GRAD_WEIGHT = """
import sys, torch, torch.nn.functional as F
x = torch.randn(2, 3, 2, 2, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
w0 = torch.randn(1, 3, 2, 2, dtype=torch.float64)
w = w0.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1).detach().requires_grad_()  # HWIO storage
try:
    F.conv2d(x, w).sum().backward()
except RuntimeError as error:
    print("backward raised:", error)
    sys.exit(1)
print("no error")
"""

# Found by the parameter-layout axis (issue 14) in the unpatchify property: conv_transpose2d on the
# CPU with a channels_last input and a weight that is not contiguous (here [2, 2, 1, 2] with
# strides (4, 1, 2, 2): a size-1 dimension's stride halved, the elements those of a dense weight)
# returns a wrong output with groups = 2 (float32 error 1.9 on values of size 1) and, with
# groups = 1, raises "grad_weight needs to be contiguous" in backward. torch 2.13.0+cpu, AVX2 EPYC.
_CONV_TRANSPOSE_STRIDED_WEIGHT = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
bad = []
for groups in (1, 2):
    x = torch.randn(1, 2, 1, 2).contiguous(memory_format=torch.channels_last).requires_grad_()
    dense = torch.randn(2, 2, 1, 2)
    w = torch.empty_strided((2, 2, 1, 2), (4, 1, 2, 2))
    w.copy_(dense)
    w.requires_grad_()
    y = F.conv_transpose2d(x, w, stride=(1, 2), groups=groups)
    want = F.conv_transpose2d(x.detach().double(), dense.double(), stride=(1, 2), groups=groups)
    if (y.double() - want).abs().max().item() > 1e-4:
        bad.append(f"groups={groups}: wrong output")
    try:
        y.backward(torch.ones_like(y))
    except RuntimeError as error:
        bad.append(f"groups={groups}: backward raised {error}")
print(bad or "no error")
sys.exit(1 if bad else 0)
"""


def _one_channel_strided_column(g: ConvGeometry) -> bool:
    """The common ground of the two NaN bugs found on 2026-12-06: one input channel per group, a
    stride in the last dimension and one output column there."""
    return g.in_per_group == 1 and g.stride[-1] > 1 and g.output_size()[-1] == 1


@dataclass(frozen=True)
class Bf16GroupedOneChannelStridedColumn(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            _cpu_channels_last_conv(case, ("bfloat16",))  # float32, float16: 0 wrong in the grid
            and g.groups > 1
            and g.out_channels // g.groups > 1
            and _one_channel_strided_column(g)
        )


# Found by thorough seed 4 on 2026-12-06 (AMD EPYC Zen 4, one thread per xdist worker; torch 2.13.0
# and 2.14.1), once each dtype had its own property test: a bfloat16 grouped conv2d forward with a
# channels_last input, one input channel per group and several output channels per group, a stride
# in the last dimension and one output column gives NaN or wrong outputs with ONE thread (20 of 20
# draws; 0 of 20 with two threads). Grid of 3,000 random bf16 channels_last conv2d (one thread):
# 23 wrong, every one with groups > 1, in_per_group 1, out_per_group > 1, last stride > 1 and one
# output column (23 of 1,853 with one output column, 0 of 1,147 with more; 0 with groups 1, with
# in_per_group > 1 or out_per_group 1); float32 and float16 never.
_BF16_GROUPED_ONE_CHANNEL_STRIDED_COLUMN = """
import sys, torch, torch.nn.functional as F
torch.set_num_threads(1)
torch.manual_seed(0)
wrong = 0
for _ in range(10):
    x = torch.randn(1, 2, 3, 4).bfloat16().contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 1, 2, 4).bfloat16().contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x, w, stride=(1, 2), groups=2)
    ref = F.conv2d(x.double(), w.double(), stride=(1, 2), groups=2)
    wrong += bool(torch.isnan(y).any() or (y.double() - ref).abs().max() > 0.05 * ref.abs().max() + 1e-2)
print("wrong outputs with one thread:", wrong, "of 10")
sys.exit(1 if wrong else 0)
"""


@dataclass(frozen=True)
class SlicedWeightOneChannelStridedColumn(KnownBug):
    def matches(self, case: Case) -> bool:
        return (
            _cpu_channels_last_conv(case, ("float32", "bfloat16"))  # float64, float16: right
            and case.param_layout == "sliced"
            and _one_channel_strided_column(case.geometry)
        )


# Found by the default CI run (tox -e verify, ci profile, 2026-12-06; AMD EPYC Zen 4, torch 2.13.0
# and 2.14.1) once each dtype had its own test: a float32 conv3d with a channels_last input, one
# input channel, a sliced weight view (strides (100, 1, 50, 10, 2)), stride 2 in the last dimension
# and one output column gives NaN. Variants of the case (not a grid: found at the end of a
# session): wrong in float32 and bfloat16, in conv2d too, with other seeds; right in float64 and
# float16, with a dense, transposed, permuted or size-1-strides weight, a contiguous input, stride
# 1, two output columns, or two channels. Likely the float32 face of
# bf16-grouped-conv-one-channel-strided-column-channels-last.
_SLICED_WEIGHT_ONE_CHANNEL_STRIDED_COLUMN = """
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
wrong = 0
for _ in range(10):
    x = torch.randn(1, 1, 1, 6, 5).contiguous(memory_format=torch.channels_last_3d)
    w = torch.randn(100).as_strided((1, 1, 1, 4, 4), (100, 1, 50, 10, 2))  # a sliced weight view
    y = F.conv3d(x, w, stride=(1, 1, 2))
    ref = F.conv3d(x.double(), w.double(), stride=(1, 1, 2))
    wrong += bool(torch.isnan(y).any() or (y.double() - ref).abs().max() > 1e-3 * ref.abs().max() + 1e-5)
print("wrong float32 outputs:", wrong, "of 10")
sys.exit(1 if wrong else 0)
"""


@dataclass(frozen=True)
class DynamicViewSymbolicGeometry(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        # grid (torch 2.13.0, float32, converted_dense, compiled-dynamic): 2x2, 1x2 output and groups
        # fail; a 1x1 output or an empty batch compile, and so does a 1-D view; one output channel
        # compiled in 2-D but failed for a 3-D transposed conv (tox -e compile, float16, 3x3x3 output)
        return g.rank >= 2 and math.prod(g.output_size()) > 1 and g.batch > 0


# Found by tox -e compile's first full run (2026-12-06, torch 2.13.0, CPU): the converter relations
# build their Linear with nn.Parameter (a graph break), and the resumed frame views the Linear's
# output [N, O*Ho*Wo] (a static width) as [N, O, Ho, Wo] with O, Ho, Wo computed from the geometry's
# ints, which dynamic=True makes symbolic: inductor's stride-order check runs value-range analysis on
# expressions like 16 // (O * Ho) and raises (InductorError: ValueError: Exponent must be
# non-negative) on a legal program. Fixed in torch 2.14.1 (the reproducer passes there).
_DYNAMIC_VIEW_SYMBOLIC_GEOMETRY = """
import sys, torch, torch.nn.functional as F
def dense_conv(x, W, b, out_channels, size, kernel):
    out = [n - k + 1 for n, k in zip(size, kernel)]
    return F.linear(x.flatten(1), W, b).view(x.shape[0], out_channels, *out)
torch.manual_seed(0)
x, W, b = torch.randn(2, 4, 3, 3), torch.randn(16, 36), torch.randn(16)
expected = dense_conv(x, W, b, 4, (3, 3), (2, 2))
try:
    got = torch.compile(dense_conv, dynamic=True)(x, W, b, 4, (3, 3), (2, 2))
except Exception as error:
    print("compile failed:", type(error).__name__, str(error).splitlines()[0])
    sys.exit(1)
print("compiled, equal:", torch.equal(got, expected))
"""


@dataclass(frozen=True)
class SymbolicOutputPositions(KnownBug):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        # the bias repeated over prod(output size): a product of three symbolic sums in 3-D (the 6-line
        # reproducer: rank 1 compiles in 7 s, rank 2 in 58 s, rank 3 not in 10 min); without a bias the
        # hanging case compiled in 4 s (batch, layout, view and groups changed nothing)
        return g.transposed and g.rank == 3 and g.bias


# Found by tox -e compile (2026-12-06, torch 2.13.0, CPU; the CI lane job would have hung to its
# timeout): converted_conv_transpose's converter builds the dense Linear's bias as
# bias.repeat_interleave(prod(output_size)) after a graph break (nn.Parameter), and in the resumed frame
# the geometry's ints are graph inputs that dynamo makes symbolic once they change (the test's second
# example, or dynamic=True): inductor's stride simplification (SizeVarAllocator._simplify_with_ranges ->
# join_dimensions, sympy match/signsimp) then runs for a time that grows with the rank. The test's own
# compile ran more than 15 minutes on 2.13.0 and 10 on 2.14.1 (stopped; py-spy: the same frames); the
# reproducer's function took 7 s and 58 s in 1-D and 2-D (2.13.0), and in 3-D did not end within 2
# minutes on 2.13.0 or 10 on 2.14.1 (stopped).
_SYMBOLIC_OUTPUT_POSITIONS = """
import math, os, signal, sys, time, torch
LIMIT = 45  # seconds; the same function in 1-D compiles in 7 s on 2.13.0
def positions_bias(b, size, stride, padding, kernel, output_padding):
    # a ConvTranspose3d's bias repeated over its output positions: the bias of its dense Linear
    out = [(n - 1) * s - 2 * p + k + op for n, s, p, k, op in zip(size, stride, padding, kernel, output_padding)]
    return b.repeat_interleave(math.prod(out))
def too_long(*_):
    print(f"the compile did not end within {LIMIT} s", flush=True)
    os._exit(1)
signal.signal(signal.SIGALRM, too_long)
signal.alarm(LIMIT)
started = time.time()
compiled = torch.compile(positions_bias, dynamic=True, fullgraph=True)
y = compiled(torch.ones(4), [4, 1, 4], [2, 3, 3], [1, 0, 3], [4, 1, 4], [0, 1, 1])
print(f"compiled in {time.time() - started:.1f} s, shape {tuple(y.shape)}")
sys.exit(0 if y.shape == (4 * 8 * 2 * 8,) else 1)
"""


# Found by the compiled-freezing lane (tox -e compile, 2026-12-06, torch 2.13.0, CPU), in
# linear_last_dim's conv1x1 formulation (4 cases: channels_last inputs with a size-1 dimension's
# stride halved, and a one-channel strided view): with freezing and dynamic sizes (a test's second
# example) inductor does not prepack the conv weight and assumes mkldnn._convolution_pointwise returns
# a channels_last output unless its input is contiguous, while the kernel returns a contiguous one for
# an input it reads as channels-first; the generated code's assert_size_stride raises. The incomplete
# fix of https://github.com/pytorch/pytorch/pull/121400 (which covered a contiguous one-channel
# input). A 192-conv grid (float32, dynamic=True, freezing; ranks 1-3, C 1 or 3, kernels 1 and 2, every
# memory format and input view): 29 raised, all ranks 2-3, all a one-channel strided view or a
# channels_last input with odd strides on a size-1 spatial dimension; none without freezing or with
# static sizes (the one-channel case also compiles in bfloat16, float16 and as a transposed conv).
# Which sizes are symbolic depends on the examples compiled before, so it is recognised by its error.
# Also in 2.14.1.
_FREEZING_DYNAMIC_CONV_OUTPUT_STRIDES = """
import sys, torch
import torch._inductor.config as config
config.freezing = True
torch.manual_seed(0)
one_channel = torch.randn(2, 1, 4, 6)[..., ::2]  # one channel, every other column: strides (24, 24, 6, 2)
row = torch.randn(2, 3, 1, 4).contiguous(memory_format=torch.channels_last)
row = row.as_strided(row.shape, (12, 1, 6, 3))  # channels_last, the size-1 row's stride halved
failed = []
for conv, x in ((torch.nn.Conv2d(1, 4, 1), one_channel), (torch.nn.Conv2d(3, 4, 1), row)):
    torch._dynamo.reset()
    conv.eval()
    try:
        with torch.no_grad():
            y = torch.compile(conv, dynamic=True)(x)
        print(tuple(x.stride()), "compiled, equal:", torch.allclose(y, conv(x), atol=1e-6))
    except Exception as error:  # only the stride check of the oneDNN conv is this bug; anything else is printed
        text = str(error)
        if isinstance(error, AssertionError) and "mkldnn._convolution_pointwise" in text:
            failed.append(tuple(x.stride()))
        print(tuple(x.stride()), "the compiled conv raised:", type(error).__name__, text.splitlines()[:1])
sys.exit(1 if failed else 0)
"""


@dataclass(frozen=True)
class FreezingLinearEmptyWeight(KnownBug):
    def matches(self, case: Case) -> bool:
        # bfloat16 fails whatever the sizes, with no input or no output features; float32 only with no input
        # features once sizes are symbolic (recognised by its error)
        g = case.geometry
        return case.device == "cpu" and case.dtype == "bfloat16" and 0 in (g.in_channels, g.out_channels)


# Found by the compiled-freezing lane (tox -e compile, 2026-12-06, torch 2.13.0, CPU), in
# linear_empty_features (float32 and bfloat16): with freezing, constant folding prepacks a Linear's
# weight for oneDNN (mkldnn._reorder_linear_weight), and oneDNN cannot build an inner product with an
# empty weight: the compile fails (BackendCompilerFailed, "could not create a primitive descriptor for
# the inner product forward propagation primitive"). bfloat16: Linear(0, O) and Linear(C, 0), static
# and dynamic sizes; float32: Linear(0, O) with dynamic sizes only (static: MKL's packed gemm, which
# prints "cblas_sgemm_pack: Parameter 9 was incorrect" and returns the bias, right; Linear(C, 0)
# compiles); float16 and float64 compile all of them. Eagerly Linear(0, O) returns its bias and
# Linear(C, 0) an empty output. Also in 2.14.1.
_FREEZING_LINEAR_EMPTY_WEIGHT = """
import sys, torch
import torch._inductor.config as config
config.freezing = True
failed = []
# bfloat16 with no input or no output features; float32 with no input features once sizes are symbolic
for dtype, dynamic, features in ((torch.bfloat16, False, (0, 4)), (torch.bfloat16, False, (3, 0)),
                                 (torch.float32, True, (0, 4))):
    linear = torch.nn.Linear(*features).to(dtype).eval()  # eagerly: the bias, or an empty output
    torch.nn.init.uniform_(linear.bias, 1, 2)  # Linear(0, O) starts with a zero bias: make it tell
    x = torch.randn(3, features[0], dtype=dtype)
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            y = torch.compile(linear, dynamic=dynamic)(x)
        print(dtype, features, "compiled, equal:", torch.equal(y, linear(x)))
    except Exception as error:  # only oneDNN's refusal is this bug; anything else is printed
        inner = getattr(error, "inner_exception", error)
        if "could not create a primitive descriptor for the inner product" in str(inner):
            failed.append((dtype, features))
        print(dtype, features, "compile failed:", type(error).__name__, str(inner)[:100])
sys.exit(1 if failed else 0)
"""


# Found by thorough seed 2 of the compiled-conv1x1-mm lane (2026-12-06, torch 2.13.0, CPU), in
# composition (float32, padding_mode 'replicate', batch 1, a 4x2 input padded (3, 1), kernel 5x2,
# stride 2, dilation (1, 2)): the compiled backward calls aten.replication_pad2d_backward on a
# channels_last gradient (inductor gave the conv a channels_last layout) and the kernel returns a
# channels_last grad_input where inductor's meta function says contiguous: the generated code's
# assert_size_stride raises. Contiguous input and weight fail too, in the default compiled lane; reflect
# padding of the same conv compiles. On the CPU inductor lays out every graph with a conv so (its
# decide_layout_opt returns True when oneDNN is there), so any replicate-padded Conv2d with more than
# one channel and a gradient into the padding fails (benchmarks/replication_pad_grid.py). That rule is
# inductor's heuristic, so it is recognised by its error, in every compiled lane. Also in 2.14.1.
_REPLICATION_PAD_BACKWARD_STRIDES = """
import sys, torch
torch.manual_seed(0)
conv = torch.nn.Conv2d(3, 8, 3, padding=1, padding_mode="replicate")
x = torch.randn(2, 3, 8, 8, requires_grad=True)
try:
    torch.compile(conv)(x).sum().backward()
except AssertionError as error:  # only the stride check of the padding's backward is this bug
    if "replication_pad2d_backward" in str(error):
        print("the compiled backward raised:", str(error).splitlines()[0])
        sys.exit(1)
    raise
print("compiled, input gradient equal:", torch.allclose(x.grad, torch.autograd.grad(conv(x).sum(), x)[0]))
"""

# Found by thorough seed 3 of the compiled-freezing lane (2026-12-06, torch 2.13.0, CPU), in
# full_kernel_3d (float32): a frozen conv's output flattened to [N, O] with an empty batch, once the conv's
# other sizes are symbolic (dynamo's automatic dynamic sizes: the same code compiled before for other
# sizes). Freezing pins the graph output's layout (freezing.enforce_output_layout); the output's strides
# hold Max(1, ...) of the symbolic sizes, and materialize_symints evaluates sym_max(1, None) for a node
# whose value it did not annotate: AssertionError ("expected (<class 'numpy.integer'>, ...), got <class
# 'NoneType'>"). Narrowed: Conv2d and Conv3d fail, Conv1d compiles (not prepacked); a stride is needed
# (kernel 2, stride 2: fails; stride 1: compiles); batch 1 or 2, no flatten, no freezing, or
# dynamic=True from the first compile: compile. Which sizes are symbolic depends on what compiled
# before, so it is recognised by its error, only in compiled-freezing. Also in 2.14.1.
_FREEZING_EMPTY_BATCH_OUTPUT_LAYOUT = """
import sys, torch
import torch._inductor.config as config
config.freezing = True
torch.manual_seed(0)
def compiled_head(in_channels, kernel, batch):  # a frozen conv head: a strided Conv2d, then Flatten
    model = torch.nn.Sequential(torch.nn.Conv2d(in_channels, 2, kernel, stride=kernel), torch.nn.Flatten()).eval()
    x = torch.randn(batch, in_channels, kernel, kernel)
    with torch.no_grad():
        return torch.compile(model)(x), model(x)
compiled_head(1, 1, 1)  # a first model: the second compile of the same code makes its changed sizes dynamic
try:
    got, want = compiled_head(4, 2, 0)  # an empty batch
except Exception as error:  # only the failed stride materialisation of freezing's output layout is this bug
    if "got <class 'NoneType'>" in str(error):
        print("the frozen compile raised:", [line for line in str(error).splitlines() if line.strip()][1])
        sys.exit(1)
    raise
print("compiled, equal:", torch.equal(got, want), tuple(got.shape))
"""

# every compiled execution lane (linconv.lanes.execution; this package imports linconv.core only,
# tests/test_execution_lanes.py keeps the two in step)
COMPILED_LANES = ("compiled", "compiled-dynamic", "compiled-freezing", "compiled-autotune", "compiled-conv1x1-mm")


@dataclass(frozen=True)
class RecognisedByItsError(KnownBug):
    def matches(self, case: Case) -> bool:
        return False  # never avoided beforehand: recognised by what it raises (KnownBug.error)


def _stride_check_failure(op: str) -> str:
    """``KnownBug.error`` for the stride check inductor's generated code runs on an op's output
    (``assert_size_stride``) failing for op ``op`` (a regular expression)."""
    return r"^AssertionError: expected size \d+==\d+, stride \d+==\d+ at dim=\d+(?s:.*)Error in op: " + op


def _inductor_failure(inner: str) -> str:
    """``KnownBug.error`` for a compile that failed in inductor (dynamo's ``BackendCompilerFailed``)
    with the error ``inner`` (a regular expression, from its start)."""
    return r"^BackendCompilerFailed: backend='inductor' raised:\s*" + inner


# Found by tox -e compile with two examples per dtype test (2026-12-06, torch 2.13.0, CPU), in 13
# tests: 3-D convs (pointwise_3d, general_conv_3d, composition_3d) fail to lower once some of their
# sizes are symbolic (compiled-dynamic; the other lanes when a test's second example recompiles with
# dynamic sizes; the freezing lane's forward too), and converted_dense's view likewise in the compiled
# lane: inductor's value-range analysis raises on a legal program (InductorError: LoweringException:
# ValueRangeError: Invalid ranges [0:-1], or ValueError: Exponent must be non-negative). Which cases
# fail depends on which sizes are symbolic and how they relate (duck sizing), so no signature on the
# case describes them (a 190-conv grid with dynamic=True from the start failed only on one-channel
# strided 1x1x1 convs; the run failed also with 2 and 56 channels, kernels 4x2x3, batch 1). Fixed in
# torch 2.14.1 (the reproducer passes there; 172 of the grid's convs compiled).
_DYNAMIC_CONV3D_1X1_STRIDED_BACKWARD = """
import sys, torch
torch.manual_seed(0)
conv = torch.nn.Conv3d(1, 1, 1, stride=(1, 2, 3), bias=False)
x = torch.randn(2, 1, 2, 3, 2, requires_grad=True)
try:
    torch.compile(conv, dynamic=True)(x).sum().backward()
except Exception as error:
    print("compile failed:", type(error).__name__, str(error).splitlines()[0])
    sys.exit(1)
print("compiled, input gradient equal:", torch.equal(x.grad, torch.autograd.grad(conv(x).sum(), x)[0]))
"""

KNOWN_BUGS: tuple[KnownBug, ...] = (
    OneDnn1x1BackwardWeights(
        name="onednn-1x1-bwd-weights-nhwc-small-ic",
        link="https://github.com/uxlfoundation/oneDNN/issues/6035",
        summary="float32/bfloat16 1x1 conv with stride > 1, channels_last input and few input channels per group: "
        "the weight gradient (oneDNN jit 1x1 backward_weights, rtus workspace) writes past its scratchpad "
        "(seen with 1 thread on AVX2, 2 threads on AVX-512); the process aborts with heap corruption",
        kind="crash",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_ONEDNN_6035,
        observed_isa=("AVX2", "AVX512"),
        avoid_everywhere=True,
    ),
    OneDnnAmxBf16PaddingOnlyTap(
        name="onednn-amx-bf16-conv-bwd-padding-only-tap",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="bfloat16 conv backward when a kernel offset reads only zero padding: a wrong (garbage) weight "
        "gradient for that tap, or a segmentation fault (conv2d on AMX CPUs; channels_last conv3d and "
        "conv_transpose1d on an AVX-512 bf16 CPU without AMX too)",
        kind="crash",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_ONEDNN_AMX_BF16_PADDING_TAP,
        observed_cpu_flags=("avx512_bf16",),
    ),
    GroupedConvWeightGradSize1Strides(
        name="grouped-conv-bwd-weight-size1-strides-channels-last",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="grouped conv2d weight gradient on the CPU with a channels_last weight and a channels_last "
        "input whose size-1 dimension has a non-canonical stride: wrong values (float64 everywhere; "
        "bfloat16/float16 on AVX2)",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_GROUPED_SIZE1_STRIDES,
    ),
    GroupedConvChannelsLastSize1StridedWeight(
        name="grouped-conv-channels-last-size1-strided-weight",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="grouped conv2d/conv3d on the CPU (float32, bfloat16) with a channels_last input and a channels_last "
        "weight whose size-1 dimensions have non-canonical strides: wrong output",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_GROUPED_CHANNELS_LAST_SIZE1_WEIGHT,
    ),
    Bf16Strided1x1DilatedInputGrad(
        name="bf16-strided-dilated-1x1-conv-bwd-input-channels-last",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="bfloat16 channels_last 1x1 conv2d with a stride and a dilation on the CPU: wrong input gradient",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_BF16_STRIDED_1X1_DILATED,
    ),
    Bf16Conv3dKernelOverInputWeightGrad(
        name="bf16-conv3d-bwd-weight-kernel-over-input-channels-last",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="bfloat16 channels_last conv3d on the CPU whose kernel is longer than the input in a dimension "
        "(zero padding): wrong weight gradient",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_BF16_CONV3D_KERNEL_OVER_INPUT,
    ),
    SlowConv2dGradWeightNotContiguous(
        name="slow-conv2d-bwd-grad-weight-not-contiguous",
        link="docs/robustness.md#known-upstream-bugs (class of https://github.com/pytorch/vision/issues/6001)",
        summary="conv2d backward on the CPU (ATen's slow_conv2d: float64/bfloat16/float16, small float32 convs) with "
        "a channels_last input and a weight that is channels_last-contiguous but not contiguous (a size-1 "
        "dimension such as O = 1 with a non-canonical stride): raises 'slow_conv2d: grad_weight must be "
        "contiguous' on a legal weight",
        kind="error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_SLOW_CONV2D_GRAD_WEIGHT,
    ),
    ConvTransposeChannelsLastStridedWeight(
        name="conv-transpose-channels-last-strided-weight",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="conv_transpose2d on the CPU with a channels_last input and a non-contiguous weight (a size-1 "
        "dimension's stride non-canonical): a wrong output with groups > 1, 'grad_weight needs to be contiguous' "
        "in backward with groups = 1",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_CONV_TRANSPOSE_STRIDED_WEIGHT,
    ),
    OneDnnAmxBf16StridedSingleColumn(
        name="onednn-amx-bf16-conv-fwd-strided-single-column",
        link="https://github.com/pytorch/pytorch/issues/169688",
        summary="bfloat16 conv2d on AMX CPUs with stride_w > 1 and output width 1 (height > 1): oneDNN's "
        "brg_conv_fwd:avx10_1_512_amx returns garbage (errors up to 1e29, different on every run)",
        kind="wrong result",
        observed_on=("2.13.0",),
        reproducer=_ONEDNN_AMX_BF16_OW1,
        observed_cpu_flags=("amx_bf16",),
    ),
    FreezingFloat64ConvPrepack(
        name="inductor-freezing-float64-conv-prepack",
        link="docs/compile.md#found-by-the-compiled-lanes (twin of https://github.com/pytorch/pytorch/issues/121175)",
        summary="inductor freezing on the CPU prepacks conv2d/conv3d weights for oneDNN whatever their dtype: "
        "compiling a float64 Conv2d/Conv3d for inference fails (BackendCompilerFailed, itensor_view_from_dense "
        "expects float/bfloat16/half)",
        kind="compile error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_FREEZING_FLOAT64_CONV,
        lanes=("compiled-freezing",),
    ),
    Bf16GroupedOneChannelStridedColumn(
        name="bf16-grouped-conv-one-channel-strided-column-channels-last",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="bfloat16 channels_last grouped conv2d on the CPU, one input channel per group, a stride in "
        "the last dimension and one output column: NaN or wrong outputs with one thread",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_BF16_GROUPED_ONE_CHANNEL_STRIDED_COLUMN,
    ),
    SlicedWeightOneChannelStridedColumn(
        name="conv-sliced-weight-one-channel-strided-column-channels-last",
        link="docs/robustness.md#known-upstream-bugs (no upstream report found)",
        summary="float32/bfloat16 channels_last conv2d/conv3d on the CPU with a sliced weight view, one input "
        "channel per group, a stride in the last dimension and one output column: NaN outputs",
        kind="wrong result",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_SLICED_WEIGHT_ONE_CHANNEL_STRIDED_COLUMN,
    ),
    DynamicViewSymbolicGeometry(
        name="inductor-dynamic-view-symbolic-geometry",
        link="docs/compile.md#found-by-the-compiled-lanes",
        summary="torch.compile(dynamic=True): viewing a Linear's [N, O*Ho*Wo] output as [N, O, Ho, Wo] with "
        "O, Ho, Wo computed from ints (symbolic) fails in inductor's value-range analysis (InductorError: "
        "ValueError: Exponent must be non-negative); fixed in 2.14.1",
        kind="compile error",
        observed_on=("2.13.0",),
        reproducer=_DYNAMIC_VIEW_SYMBOLIC_GEOMETRY,
        lanes=("compiled-dynamic",),
        relations=("converted_dense", "converted_conv_transpose"),
    ),
    SymbolicOutputPositions(
        name="inductor-symbolic-output-positions-compile-hang",
        link="docs/compile.md#found-by-the-compiled-lanes (no upstream report found)",
        summary="torch.compile with symbolic ints: a tensor sized by the product of three sums of symbolic ints "
        "(a ConvTranspose3d's output positions: the converter's bias.repeat_interleave) takes inductor's stride "
        "simplification (sizevars join_dimensions) more than 10 minutes; rank 2: about a minute",
        kind="compile hang",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_SYMBOLIC_OUTPUT_POSITIONS,
        lanes=COMPILED_LANES,
        relations=("converted_conv_transpose",),
    ),
    RecognisedByItsError(
        name="inductor-dynamic-sizes-value-range-error",
        link="docs/compile.md#found-by-the-compiled-lanes",
        summary="torch.compile with dynamic sizes: lowering a 3-D conv (or a view with computed geometry) fails "
        "in inductor's value-range analysis on a legal program (InductorError: LoweringException: "
        "ValueRangeError: Invalid ranges [0:-1], or ValueError: Exponent must be non-negative); which cases "
        "fail depends on which sizes are symbolic, so it is recognised by its error; fixed in 2.14.1",
        kind="compile error",
        observed_on=("2.13.0",),
        reproducer=_DYNAMIC_CONV3D_1X1_STRIDED_BACKWARD,
        lanes=COMPILED_LANES,
        error=r"^InductorError: (LoweringException: )?(ValueRangeError: Invalid ranges|ValueError: Exponent must "
        r"be non-negative)",
    ),
    RecognisedByItsError(
        name="inductor-freezing-dynamic-conv-output-strides",
        link="docs/compile.md#found-by-the-compiled-lanes (the case https://github.com/pytorch/pytorch/pull/121400 "
        "left out)",
        summary="inductor freezing with dynamic sizes on the CPU: a float32 conv2d/conv3d whose input is neither "
        "contiguous nor read as channels_last by oneDNN (a one-channel strided view; a channels_last input with "
        "odd strides on a size-1 dimension) fails the generated code's stride check (AssertionError: expected "
        "size ..., stride ... in mkldnn._convolution_pointwise); which sizes are symbolic depends on the "
        "examples compiled before, so it is recognised by its error",
        kind="compile error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_FREEZING_DYNAMIC_CONV_OUTPUT_STRIDES,
        lanes=("compiled-freezing",),
        error=_stride_check_failure(r"torch\.ops\.mkldnn\._convolution_pointwise\."),
    ),
    FreezingLinearEmptyWeight(
        name="inductor-freezing-linear-empty-weight",
        link="docs/compile.md#found-by-the-compiled-lanes (no upstream report found)",
        summary="inductor freezing on the CPU prepacks a Linear's weight for oneDNN, which cannot build an inner "
        "product with an empty weight: compiling Linear(0, O) or Linear(C, 0) for inference fails "
        "(BackendCompilerFailed, could not create a primitive descriptor for the inner product) in bfloat16, "
        "and Linear(0, O) in float32 once sizes are symbolic (recognised by its error there)",
        kind="compile error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_FREEZING_LINEAR_EMPTY_WEIGHT,
        lanes=("compiled-freezing",),
        relations=("linear_empty_features",),  # the one relation that draws a Linear with no in or out features
        error=_inductor_failure(
            r"RuntimeError: could not create a primitive "
            r"descriptor for the inner product forward propagation primitive"
        ),
    ),
    RecognisedByItsError(
        name="inductor-replication-pad-backward-strides",
        link="docs/compile.md#found-by-the-compiled-lanes (no upstream report found)",
        summary="torch.compile on the CPU: the backward of any replicate-padded Conv2d (more than one "
        "channel, a gradient into the padding) fails: inductor lays every conv channels_last on the CPU, "
        "and replication_pad2d_backward returns a channels_last grad_input for a channels_last gradient "
        "where its meta function says contiguous, so the generated code's stride check fails "
        "(AssertionError: expected size ..., stride ...); recognised by its error, since which graphs "
        "inductor lays out so is its own heuristic",
        kind="compile error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_REPLICATION_PAD_BACKWARD_STRIDES,
        lanes=COMPILED_LANES,
        error=_stride_check_failure(r"torch\.ops\.aten\.replication_pad[123]d_backward\."),
    ),
    RecognisedByItsError(
        name="inductor-freezing-empty-batch-output-layout",
        link="docs/compile.md#found-by-the-compiled-lanes (no upstream report found)",
        summary="inductor freezing on the CPU: a strided Conv2d/Conv3d whose output is flattened, with an "
        "empty batch, fails to compile once its other sizes are symbolic: pinning the output's layout "
        "(freezing.enforce_output_layout) evaluates sym_max(1, None) (BackendCompilerFailed: AssertionError: "
        "expected (<class 'numpy.integer'>, ...), got <class 'NoneType'>); which sizes are symbolic depends on "
        "what compiled before, so it is recognised by its error",
        kind="compile error",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_FREEZING_EMPTY_BATCH_OUTPUT_LAYOUT,
        lanes=("compiled-freezing",),
        error=_inductor_failure(
            r"AssertionError: expected \(<class "
            r"'numpy\.integer'>, <class 'numpy\.floating'>, <class 'int'>, <class 'float'>\), got <class 'NoneType'>"
        ),
    ),
)


def get_bug(name: str) -> KnownBug:
    """The known bug called ``name`` (ValueError naming the known ones otherwise)."""
    for bug in KNOWN_BUGS:
        if bug.name == name:
            return bug
    raise ValueError(f"known bug must be one of {[b.name for b in KNOWN_BUGS]}, got {name!r}")
