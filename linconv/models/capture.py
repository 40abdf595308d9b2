"""One forward with hooks: every Conv and Linear call a model makes, with the layer's real
parameters, the activation it really received and the output it gave.

Inputs and outputs are cloned as the hook sees them (``clone`` keeps the strides, so a
channels_last activation stays channels_last): a later in-place op (``ReLU(inplace=True)``,
``out += identity``) cannot change what was recorded. Parameters are the module's own tensors.
A module whose weights are used without calling it (``nn.MultiheadAttention`` passes
``out_proj.weight`` to ``F.multi_head_attention_forward``) never runs its hook: it is listed as
present but not called, so the report says what was not checked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from linconv.models.load import ModelError, _first_line

__all__ = ["CONV_TYPES", "LINEAR_TYPES", "TRANSPOSED_TYPES", "LayerCall", "capture_calls"]

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
LINEAR_TYPES = (nn.Linear,)
_RECORDED = CONV_TYPES + TRANSPOSED_TYPES + LINEAR_TYPES


@dataclass(frozen=True)
class LayerCall:
    """One call of a Conv/Linear module during the forward."""

    order: int  # position among the recorded calls
    name: str  # qualified module name; "#2", "#3" ... for a module called again
    module: nn.Module
    x: torch.Tensor
    y: torch.Tensor

    @property
    def type_name(self) -> str:
        return type(self.module).__name__


def _recorded(module: nn.Module) -> bool:
    return isinstance(module, _RECORDED)


def capture_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[LayerCall], list[str]]:
    """Run ``model(x)`` once (no autograd) and return every Conv/Linear call in order, and the
    names of Conv/Linear modules the model has but never called. ModelError: the model has no
    Conv/Linear module, rejects the input, or called none."""
    present = {name or type(model).__name__: m for name, m in model.named_modules() if _recorded(m)}
    if not present:
        kinds = sorted({type(m).__name__ for m in model.modules()})
        raise ModelError(f"MODEL has no Conv or Linear layer to check (its modules: {', '.join(kinds)})")
    names = {id(m): name for name, m in present.items()}
    calls: list[LayerCall] = []
    seen: Counter[str] = Counter()

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        inputs = args[0] if args else kwargs.get("input")
        if not isinstance(inputs, torch.Tensor) or not isinstance(output, torch.Tensor):
            return  # not a plain tensor call (a quantized or packed module): nothing to measure
        name = names[id(module)]
        seen[name] += 1
        label = name if seen[name] == 1 else f"{name}#{seen[name]}"
        calls.append(LayerCall(len(calls), label, module, inputs.detach().clone(), output.detach().clone()))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in present.values()]
    try:
        with torch.no_grad():
            model(x)
    except Exception as exc:
        raise ModelError(
            f"--input-shape {','.join(map(str, x.shape))}: the model rejects an input of this shape "
            f"({x.dtype} on {x.device}): {_first_line(exc)}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    if not calls:
        raise ModelError(f"MODEL has Conv/Linear modules ({', '.join(present)}) but its forward called none of them")
    called = {call.name.split("#")[0] for call in calls}
    return calls, [name for name in present if name not in called]
