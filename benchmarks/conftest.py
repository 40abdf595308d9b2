"""pytest-benchmark wiring for benchmarks/: every saved JSON names the torch build, the precision
flags and the machine identity (linconv.report.machine_identity), so two torch versions' runs can
be compared and a comparison across different machines is visible as such."""

from __future__ import annotations

from typing import Any

import torch

from linconv.lanes.flags import read_flags
from linconv.runreport import machine_identity


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda
    machine_info["precision_flags"] = read_flags().to_dict()
    # threads of the benchmarks themselves are fixed per benchmark (see each module's extra_info)
    machine_info["linconv_machine"] = machine_identity()
