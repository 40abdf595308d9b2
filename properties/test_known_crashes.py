"""Known upstream crashes (linconv/known_crashes.py): each reproducer still crashes, in a
subprocess, on the torch versions it was seen on; when one stops crashing the test says so."""

import pytest
import torch
from packaging.version import Version

from linconv.known_crashes import KNOWN_CRASHES, run_reproducer


@pytest.mark.parametrize("crash", KNOWN_CRASHES, ids=lambda k: k.name)
def test_known_crash_is_tracked(crash):
    version = Version(torch.__version__).base_version
    isa = torch.backends.cpu.get_cpu_capability()
    result = run_reproducer(crash)
    crashed = result.returncode != 0
    if crash.expected_here(version):
        if crashed:
            pytest.xfail(f"known upstream crash on torch {version}: {crash.link} (exit {result.returncode})")
        pytest.fail(
            f"{crash.name} no longer crashes on torch {version} ({isa}): update linconv/known_crashes.py "
            f"(observed_on) and let the properties draw these inputs again; {crash.link}"
        )
    if crashed:
        pytest.xfail(
            f"{crash.name} also crashes on torch {version} with CPU capability {isa}: add them to "
            f"observed_on / observed_isa; {crash.link}"
        )
