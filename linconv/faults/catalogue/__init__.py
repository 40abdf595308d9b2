"""The fault catalogue: broken formulations, each modelled on a class of real PyTorch bug, and
benign perturbations that only change rounding; one module per bug class, each fault registered
next to its wrapper (:func:`linconv.faults.record.fault`).

Every wrapper breaks ONE formulation of ONE relation and leaves the float64 reference alone.
Harmful faults are silent: they return tensors of plausible values (or a shape the caller did
not ask for) instead of raising, as the bugs they model did. Each fault fires only under the
condition its bug class needs (channels_last input, groups with few channels, stride > 1, batch
1, a half dtype ...), so the search has to find that corner.
"""

from linconv.faults.catalogue import (  # noqa: F401  (importing a module registers its faults)
    backward,
    benign,
    bias,
    compiled,
    edges,
    empty,
    init,
    layout,
    precision,
    shapes,
    sharpness,
    views,
)
