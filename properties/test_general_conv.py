"""General conv: any Conv2d (stride, padding incl. 'same'/'valid' and every padding mode, dilation,
groups) equals unfold + matmul and equals a dense Linear on the flattened input — forward and backward."""

from properties.support import relation_property

test_conv_equals_unfold_matmul_and_dense_linear = relation_property("general_conv")
