"""What the page says about the machine (device, driver, torch / CUDA / cuDNN versions, the flags
torch ships) and the measured TF32 vs IEEE error: the float32 formulations of the cross-device
relations on a fixed table of shapes, under the as-shipped and the strict lane."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass

import torch

from linconv.core.cases import Case, Params
from linconv.core.geometry import ConvGeometry
from linconv.lanes.flags import read_flags
from linconv.lanes.modes import device_mode, modes_of
from linconv.measure.compare import float64_cpu
from linconv.relations import relations

__all__ = ["GEOMETRIES", "ErrorRow", "driver_version", "error_table", "versions"]

# Representative float32 shapes, each within every applicable formulation's memory (the dense
# Linear of a 3x3 conv is [O*H*W, C*H*W]: 4096 x 4096 here). K is the sum length of an output.
GEOMETRIES: dict[str, ConvGeometry] = {
    "[8,512,4,4] -> 5, kernel 4x4 (K 8192)": ConvGeometry(8, 512, 5, (4, 4), kernel=4),
    "[8,1024,1,1] -> 1000, 1x1 head (K 1024)": ConvGeometry(8, 1024, 1000, (1, 1)),
    "[8,128,4,4] -> 128, 1x1 (K 128)": ConvGeometry(8, 128, 128, (4, 4)),
    "[8,64,8,8] -> 64, 3x3 pad 1 (K 576)": ConvGeometry(8, 64, 64, (8, 8), kernel=3, padding=1),
}


def driver_version() -> str:
    """The NVIDIA driver (nvidia-smi), else the CUDA driver API version torch sees, else why not."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            done = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    get = getattr(torch._C, "_cuda_getDriverVersion", None)
    if get is not None and torch.cuda.is_available():
        version = int(get())
        return f"unknown (nvidia-smi absent); CUDA driver API {version // 1000}.{version % 1000 // 10}"
    return "unknown (no nvidia-smi, no CUDA driver)"


def _cpu_model() -> str:
    from linconv.runreport.build import machine_identity

    return str(machine_identity()["cpu_model"])


def versions(device: str) -> dict[str, str]:
    """Device, driver, torch / CUDA / cuDNN and the other versions the page names."""
    info: dict[str, str] = {}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info["device"] = f"{props.name} (compute capability {props.major}.{props.minor}, "
        info["device"] += f"{props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
        info["driver"] = driver_version()
    else:
        info["device"] = f"{device}: {_cpu_model()} (a rehearsal: no GPU)"
        info["driver"] = "none (not a GPU run)"
    info["torch"] = torch.__version__
    info["CUDA (torch built with)"] = str(torch.version.cuda)
    info["cuDNN"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"
    info["CPU"] = f"{_cpu_model()}, {torch.get_num_threads()} threads"
    info["Python"] = platform.python_version()
    try:
        from hypothesis import __version__ as hypothesis_version
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        hypothesis_version = "absent"
    info["Hypothesis"] = hypothesis_version
    info["precision flags as shipped"] = read_flags().describe()
    return info


@dataclass(frozen=True)
class ErrorRow:
    """The largest |computed - float64| / (|W| (*) |x| + |b|) of one formulation's float32 output."""

    shape: str
    relation: str
    formulation: str
    ops: tuple[str, ...]
    errors: dict[str, float]  # precision mode -> largest relative error


def _largest_relative_error(y: torch.Tensor, reference: torch.Tensor, magnitude: torch.Tensor) -> float:
    error = (float64_cpu(y) - reference).abs()
    return float((error / magnitude.clamp_min(torch.finfo(torch.float64).tiny)).max())


def error_table(device: str) -> list[ErrorRow]:
    """Every float32 formulation of the cross-device linear-map relations on GEOMETRIES, on
    ``device`` in the as-shipped and strict modes (CUDA; other devices: their one mode)."""
    modes = [m for m in modes_of(device) if m in ("as-shipped", "strict")] or list(modes_of(device))
    chosen = [r for r in relations() if r.cross_device and r.negative_control is None and r.reference is not None]
    rows = []
    for shape, geometry in GEOMETRIES.items():
        for relation in chosen:
            case = Case(geometry, seed=0, device=device)
            if relation.applies_to(case):
                continue
            t = case.build()
            params = t.params
            cpu = Params(*(None if v is None else float64_cpu(v) for v in params.as_dict().values()))
            cpu_abs = Params(*(None if v is None else v.abs() for v in cpu.as_dict().values()))
            reference = relation.reference(float64_cpu(t.x), cpu, geometry)
            magnitude = relation.reference(float64_cpu(t.x).abs(), cpu_abs, geometry)
            for name, spec in relation.formulations.items():
                errors = {}
                for mode in modes:
                    with device_mode(mode), torch.no_grad():
                        errors[mode] = _largest_relative_error(spec.fn(t.x, params, geometry), reference, magnitude)
                rows.append(ErrorRow(shape, relation.name, name, tuple(spec.ops), errors))
    return rows
