"""Hypothesis strategies for linconv: geometries, dtypes and layouts, value kinds, whole cases."""

from strategies.cases import (
    cases,
    classifier_head_cases,
    composition_cases,
    full_kernel_cases,
    general_cases,
    pointwise_cases,
)
from strategies.dtypes import dtypes, input_views, memory_formats
from strategies.geometry import conv_geometries, full_kernel_geometries, pointwise_geometries
from strategies.values import value_kinds

__all__ = [
    "cases",
    "classifier_head_cases",
    "composition_cases",
    "conv_geometries",
    "dtypes",
    "full_kernel_cases",
    "full_kernel_geometries",
    "general_cases",
    "input_views",
    "memory_formats",
    "pointwise_cases",
    "pointwise_geometries",
    "value_kinds",
]
