"""A user's model from ``MODULE:FACTORY``, and the input it is run on.

Every way the request can be wrong is a :class:`ModelError` that names the argument and what was
expected (the command turns it into exit status 2): no such module or factory, a factory that
raises or returns something else than an ``nn.Module``, an input shape that is not positive ints.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

from linconv.core.cases import torch_dtype

__all__ = ["ModelError", "build_model", "load_factory", "make_input", "parse_input_shape"]


class ModelError(ValueError):
    """A model check that cannot run as asked: the message names the argument and what was expected."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1,3,224,224"`` -> ``(1, 3, 224, 224)``: one or more positive ints, comma-separated."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ModelError(f"--input-shape must be comma-separated positive ints such as 1,3,224,224, got {text!r}")
    return tuple(int(p) for p in parts)


def load_factory(spec: str) -> Callable[[], object]:
    """The callable ``FACTORY`` (dotted names allowed) in module ``MODULE``."""
    module_name, sep, attribute = str(spec).partition(":")
    if not sep or not module_name or not attribute:
        raise ModelError(f"MODEL must be MODULE:FACTORY such as torchvision.models:resnet18, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = " (pip install 'linconv[models]')" if exc.name.split(".")[0] == "torchvision" else ""
            raise ModelError(f"MODEL {spec!r}: no module named {exc.name!r}{hint}") from None
        raise ModelError(f"MODEL {spec!r}: importing {module_name!r} failed: {_first_line(exc)}") from None
    except Exception as exc:
        raise ModelError(f"MODEL {spec!r}: importing {module_name!r} failed: {_first_line(exc)}") from None
    factory: object = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ModelError(f"MODEL {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ModelError(
            f"MODEL {spec!r}: {attribute!r} must be callable (a function or class), got {type(factory).__name__}"
        )
    return factory  # type: ignore[return-value]


def build_model(spec: str, *, dtype: str = "float32", device: str = "cpu", seed: int = 0) -> nn.Module:
    """``FACTORY()`` under ``torch.manual_seed(seed)`` (random init is reproducible; no weights are
    downloaded unless the factory does it), in eval mode, in ``dtype`` on ``device``."""
    factory = load_factory(spec)
    torch.manual_seed(seed)
    try:
        model = factory()
    except Exception as exc:
        raise ModelError(f"MODEL {spec!r}: calling the factory raised {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"MODEL {spec!r}: the factory must return a torch.nn.Module, got {type(model).__name__}")
    try:
        return model.to(device=device, dtype=torch_dtype(dtype)).eval()
    except ValueError as exc:
        raise ModelError(f"--dtype: {exc}") from None
    except RuntimeError as exc:
        raise ModelError(f"--device {device!r}: cannot move the model there: {_first_line(exc)}") from None


def make_input(shape: tuple[int, ...], *, dtype: str, device: str, seed: int = 0) -> torch.Tensor:
    """Standard normal values from ``seed``, drawn on the CPU in float64 (the same numbers on every
    device), rounded to ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    return x.to(torch_dtype(dtype)).to(device)
