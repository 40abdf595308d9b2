"""Known upstream bugs (linconv/known_bugs/): each reproducer still fails, in a subprocess,
with the torch versions and on the CPUs it was seen on; when one stops failing the test says so,
and where one fails on a CPU or torch not yet listed the test reports that as an expected failure
naming what to add."""

import pytest
import torch
from packaging.version import Version

from linconv.known_bugs import KNOWN_BUGS, run_reproducer


@pytest.mark.parametrize("bug", KNOWN_BUGS, ids=lambda k: k.name)
def test_known_bug_is_tracked(bug):
    version = Version(torch.__version__).base_version
    isa = torch.backends.cpu.get_cpu_capability()
    result = run_reproducer(bug)
    failed = result.returncode != 0
    if bug.expected_here(version):
        if failed:
            pytest.xfail(f"known upstream {bug.kind} on torch {version} ({isa}): {bug.link} (exit {result.returncode})")
        pytest.fail(
            f"{bug.name} no longer fails on torch {version} ({isa}): update linconv/known_bugs.py "
            f"(observed_on) and let the properties draw these inputs again; {bug.link}\n{result.stdout[-500:]}"
        )
    if failed:
        pytest.xfail(
            f"{bug.name} also fails on torch {version} with CPU capability {isa}: add them to "
            f"observed_on / observed_isa / observed_cpu_flags; {bug.link}"
        )
