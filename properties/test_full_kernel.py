"""Full kernel: a Conv2d whose kernel covers the whole input equals Linear(C*H*W, O) on
x.flatten(1); output [N, O, 1, 1] vs [N, O], batch 1 included — forward and backward."""

from properties.support import relation_property

test_full_kernel_conv_equals_flatten_linear = relation_property("full_kernel")
