"""Conv1d: the Conv2d relations in one dimension — Conv1d(C, O, 1) equals Linear(C, O) over the
channels of a sequence (also stored [N, L, C]); a kernel covering the sequence equals flatten +
Linear; any Conv1d equals unfold + matmul and a dense Linear; Linear . Conv1d is one Linear (and
with a ReLU between them is not); default init equals Linear's; the converters compute the conv —
forward and backward."""

from properties.support import relation_property

test_conv1d_1x1_equals_linear_over_channels = relation_property("pointwise_1d")
test_full_kernel_conv1d_equals_flatten_linear = relation_property("full_kernel_1d")
test_conv1d_equals_unfold_matmul_and_dense_linear = relation_property("general_conv_1d")
test_linear_after_conv1d_is_one_linear = relation_property("composition_1d")
test_linear_after_conv1d_relu_is_not_one_linear = relation_property("composition_1d_with_activation")
test_conv1d_and_linear_init_are_bit_identical = relation_property("init_1d")
test_conv1x1_to_linear_computes_the_conv1d = relation_property("converted_pointwise_1d")
test_full_kernel_conv_to_linear_computes_the_conv1d = relation_property("converted_full_kernel_1d")
