"""Known upstream bugs (linconv/known_bugs/): each reproducer, run in a subprocess, decides whether
its bug is present on this torch build and CPU, and the properties avoid its inputs exactly where
it is. This test reports the answer: an expected failure where the bug reproduces (naming what to
add to the catalogue when it reproduces somewhere it was not seen), a failure where it was seen
but no longer reproduces (fixed: update the catalogue), a pass where it is absent."""

import pytest
import torch
from packaging.version import Version

from linconv.known_bugs import KNOWN_BUGS, reproductions


@pytest.mark.parametrize("bug", KNOWN_BUGS, ids=lambda k: k.name)
def test_known_bug_is_tracked(bug):
    version = Version(torch.__version__).base_version
    isa = torch.backends.cpu.get_cpu_capability()
    found = reproductions()[bug.name]
    seen_here = bug.expected_here(version)
    if found.reproduced:
        where = "" if seen_here else (
            f"; it was not listed for torch {version} / {isa}: add them to observed_on / observed_isa / "
            "observed_cpu_flags in linconv/known_bugs/catalogue.py"
        )  # fmt: skip
        pytest.xfail(f"known upstream {bug.kind} present (exit {found.returncode}): {bug.link}{where}")
    if seen_here:
        pytest.fail(
            f"{bug.name} no longer reproduces on torch {version} ({isa}), where it was seen: the properties now "
            f"draw its inputs again; update linconv/known_bugs/catalogue.py (observed_on); {bug.link}\n{found.output}"
        )
