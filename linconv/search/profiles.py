"""Hypothesis settings profiles, defined once: conftest.py loads them for the properties, and
calibration and the fault search derive their settings from them.

- ``dev`` (50 examples): quick local runs;
- ``ci`` (100, derandomised, no database, ``print_blob``): the default of tox, the gate and the
  fault benchmark — two runs draw the same examples;
- ``thorough`` (1000): the flake check (docs/robustness.md);
- ``debug`` (10, verbose).

``deadline=None`` everywhere: the first example on a device pays for lazy initialisation
(oneDNN primitives, CUDA context), which is not the code under test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Verbosity, settings
from hypothesis.errors import InvalidArgument

__all__ = ["DEFAULT_PROFILE", "PROFILES", "load_profile", "profile", "register_profiles"]

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=50, **_COMMON),
    "ci": settings(max_examples=100, derandomize=True, print_blob=True, database=None, **_COMMON),
    "thorough": settings(max_examples=1000, **_COMMON),
    "debug": settings(max_examples=10, verbosity=Verbosity.verbose, **_COMMON),
}
# The profile pytest loads when neither --hypothesis-profile nor LINCONV_PROFILE names one.
DEFAULT_PROFILE = "dev"


def register_profiles() -> None:
    for name, values in PROFILES.items():
        settings.register_profile(name, values)


def profile(name: str) -> settings:
    """The settings of profile ``name`` (ValueError naming the profiles when it is unknown)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"Hypothesis profile must be one of {tuple(PROFILES)}, got {name!r}") from None


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (``--hypothesis-profile``; default: $LINCONV_PROFILE,
    else ``dev``): one of :data:`PROFILES` or a profile a plugin registered with Hypothesis.
    ValueError names where the unknown name came from."""
    register_profiles()
    source, chosen = "--hypothesis-profile", name
    if not chosen:
        source, chosen = "LINCONV_PROFILE", os.environ.get("LINCONV_PROFILE") or DEFAULT_PROFILE
    try:
        settings.load_profile(chosen)
    except InvalidArgument:
        raise ValueError(
            f"{source} must name a registered Hypothesis profile ({', '.join(PROFILES)}, or one a plugin "
            f"registers), got {chosen!r}"
        ) from None
    return chosen
