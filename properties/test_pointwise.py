"""Pointwise: Conv2d(C, O, 1) on NCHW input equals Linear(C, O) over the channel axis
(with stride s, on x[:, :, ::s, ::s]; with groups, a block-diagonal Linear) — forward and backward."""

from properties.support import relation_property

test_conv1x1_equals_linear_over_channels = relation_property("pointwise")
