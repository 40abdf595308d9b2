"""Composition: Linear . Conv2d (1x1, full-kernel or general) with no activation equals one
fused Linear, forward and backward; with a ReLU between them it does not (negative control)."""

from properties.support import relation_property

test_linear_after_conv_equals_fused_linear = relation_property("composition")
test_fused_linear_differs_with_activation_between = relation_property("composition_with_activation")
