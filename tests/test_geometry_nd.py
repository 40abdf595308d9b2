"""Transposed geometries: torch's shapes, exact reduction lengths, the adjoint, and ids of stored
cases that do not move when the new fields keep their defaults."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from linconv.core.cases import Case
from linconv.core.geometry import ConvGeometry
from linconv.corpus.store import case_id
from strategies.geometry import conv_transpose_geometries, patch_geometries

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _terms(g: ConvGeometry) -> torch.Tensor:
    """Terms in each output sum, counted by torch: the transposed conv of ones with a kernel of ones."""
    ones = torch.ones(1, g.in_channels, *g.size, dtype=torch.float64)
    weight = torch.ones(g.weight_shape, dtype=torch.float64)
    return _CONV_TRANSPOSE[g.rank](ones, weight, None, g.stride, g.padding, g.output_padding, g.groups, g.dilation)


@settings(max_examples=200, deadline=None, database=None)
@given(g=conv_transpose_geometries())
def test_transposed_shapes_and_reduction_length_are_torchs(g: ConvGeometry) -> None:
    terms = _terms(g)
    assert tuple(terms.shape[2:]) == g.output_size()
    assert int(terms.max()) == g.reduction_length()  # exact: the bound is not loosened
    adjoint = g.adjoint()
    assert (adjoint.in_channels, adjoint.out_channels, adjoint.size) == (g.out_channels, g.in_channels, g.output_size())
    assert adjoint.weight_shape == g.weight_shape
    assert all(a >= n for a, n in zip(adjoint.output_size(), g.size, strict=True))


@settings(max_examples=100, deadline=None, database=None)
@given(g=patch_geometries(transposed=True))
def test_unpatchify_reaches_each_output_once_per_channel(g: ConvGeometry) -> None:
    assert g.is_patch() and g.taps_per_output() == 1
    assert g.reduction_length() == g.in_per_group
    assert g.output_size() == tuple(n * k for n, k in zip(g.size, g.kernel, strict=True))


def test_a_transposed_output_no_tap_reaches():
    g = ConvGeometry(1, 1, 1, (2,), kernel=3, stride=2, padding=3, dilation=2, transposed=True)
    assert g.output_size() == (1,) and g.taps_per_output() == 0 and int(_terms(g).max()) == 0
    assert math.isfinite(Case(g).build().weight.abs().max().item())  # the init scale copes with K = 0


def test_new_fields_with_defaults_leave_ids_and_descriptions_alone():
    g = ConvGeometry(2, 3, 4, (5, 5), kernel=3, stride=2)
    assert "transposed" not in g.minimal_dict() and "output_padding" not in g.minimal_dict()
    assert case_id("general_conv", Case(g)) == case_id("general_conv", Case(ConvGeometry.from_dict(
        {k: v for k, v in g.to_dict().items() if k not in ("transposed", "output_padding")})))  # fmt: skip
    t = ConvGeometry(2, 3, 4, (5, 5), kernel=3, stride=2, transposed=True, output_padding=(1, 0))
    assert t.minimal_dict()["transposed"] is True and t.minimal_dict()["output_padding"] == [1, 0]
    assert t.describe() == "N2 C3 5x5 -> O4 transposed k3x3 s2x2 op1x0 bias"
    assert ConvGeometry.from_dict(t.to_dict()) == t


def test_adjoint_needs_a_transposed_geometry():
    with pytest.raises(ValueError, match=r"^adjoint: the geometry must be a transposed conv \(transposed=true\)$"):
        ConvGeometry(1, 1, 1, (3,)).adjoint()
