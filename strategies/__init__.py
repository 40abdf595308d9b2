"""Hypothesis strategies for linconv: geometries, dtypes and layouts, value kinds, whole cases."""

from strategies.cases import (
    cases,
    classifier_head_cases,
    composition_cases,
    conv_transpose_cases,
    full_kernel_cases,
    general_cases,
    invalid_cases,
    linear_cases,
    patch_embedding_cases,
    pointwise_cases,
    unpatchify_cases,
)
from strategies.dtypes import dtypes, input_views, memory_formats, param_layouts
from strategies.geometry import conv_geometries, full_kernel_geometries, pointwise_geometries
from strategies.values import value_kinds

__all__ = [
    "cases",
    "classifier_head_cases",
    "composition_cases",
    "conv_geometries",
    "conv_transpose_cases",
    "dtypes",
    "full_kernel_cases",
    "full_kernel_geometries",
    "linear_cases",
    "general_cases",
    "input_views",
    "invalid_cases",
    "memory_formats",
    "param_layouts",
    "patch_embedding_cases",
    "pointwise_cases",
    "pointwise_geometries",
    "unpatchify_cases",
    "value_kinds",
]
