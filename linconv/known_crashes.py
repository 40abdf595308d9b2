"""Known upstream crashes: inputs that corrupt the heap of the process running them.

A crash cannot be caught by the property that hits it: it kills pytest, the report and the
capture of the case with it. So the properties steer clear of the signatures below (an
``assume`` plus a Hypothesis ``event`` naming the bug), and properties/test_known_crashes.py
runs each reproducer in a subprocess to track it: expected to crash on the listed torch versions,
reported as soon as it stops crashing (fixed: narrow or drop the entry) or crashes elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch

from linconv.cases import Case

__all__ = ["KNOWN_CRASHES", "KnownCrash", "known_crash", "run_reproducer"]


@dataclass(frozen=True)
class KnownCrash:
    name: str
    link: str
    summary: str
    observed_on: tuple[str, ...]  # torch versions where the reproducer crashed here
    reproducer: str  # a Python program; exits 0 when the bug is absent
    env: tuple[tuple[str, str], ...] = ()
    # CPU capabilities (torch.backends.cpu.get_cpu_capability()) the crash was seen on: oneDNN
    # picks its kernels by ISA, so the same torch crashes on one CPU and not on another
    observed_isa: tuple[str, ...] = ()

    def expected_here(self, torch_version: str) -> bool:
        """Whether the reproducer is known to crash with this torch on this CPU."""
        isa = torch.backends.cpu.get_cpu_capability()
        return torch_version in self.observed_on and (not self.observed_isa or isa in self.observed_isa)

    def matches(self, case: Case) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class OneDnn1x1BackwardWeights(KnownCrash):
    def matches(self, case: Case) -> bool:
        g = case.geometry
        return (
            case.device == "cpu"
            and case.dtype == "float32"
            and case.memory_format == "channels_last"
            and g.kernel == (1, 1)
            and g.stride != (1, 1)
            and g.in_per_group < 16  # oneDNN's channel block: 8 on AVX2, 16 on AVX-512
            and torch.get_num_threads() == 1
        )


# Found by linconv's calibration run (python -m linconv calibrate with OMP_NUM_THREADS=1):
# glibc aborted with "corrupted double-linked list" in backward. Reduced by hand to the program
# below; crashes on torch 2.13.0 (CPU wheel) and 2.14.1 (CUDA wheel, on the CPU) on an AVX2 EPYC.
# It does not crash on an AVX-512 Xeon (torch 2.13.0, checked 2026-11-30): oneDNN runs another
# 1x1 kernel there. The properties still avoid the signature everywhere (a crash would end the
# whole run, report and capture included); only the tracking test is ISA-aware.
_ONEDNN_6035 = """
import torch, torch.nn.functional as F
torch.set_num_threads(1)
x = torch.randn(2, 3, 12, 6).contiguous(memory_format=torch.channels_last)
w = torch.randn(27, 3, 1, 1, requires_grad=True)
for _ in range(300):
    y = F.conv2d(x, w, None, stride=(2, 2))
    y.backward(torch.randn_like(y))
print("no crash")
"""

KNOWN_CRASHES: tuple[KnownCrash, ...] = (
    OneDnn1x1BackwardWeights(
        name="onednn-1x1-bwd-weights-nhwc-small-ic",
        link="https://github.com/uxlfoundation/oneDNN/issues/6035",
        summary="float32 1x1 conv with stride > 1, channels_last input and few input channels per group: "
        "the weight gradient (oneDNN jit 1x1 backward_weights, rtus workspace) writes past its scratchpad "
        "when torch runs one thread; the process aborts with heap corruption",
        observed_on=("2.13.0", "2.14.1"),
        reproducer=_ONEDNN_6035,
        env=(("OMP_NUM_THREADS", "1"),),
        observed_isa=("AVX2",),
    ),
)


def known_crash(case: Case) -> KnownCrash | None:
    """The known crash ``case`` would trigger in this process, if any."""
    return next((k for k in KNOWN_CRASHES if k.matches(case)), None)


def run_reproducer(crash: KnownCrash, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run the reproducer in a fresh interpreter; a crash shows as a non-zero return code."""
    env = {**os.environ, **dict(crash.env)}
    return subprocess.run([sys.executable, "-c", crash.reproducer], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)  # fmt: skip
