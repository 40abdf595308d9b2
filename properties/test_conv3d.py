"""Conv3d: the Conv2d relations in three dimensions — Conv3d(C, O, 1) equals Linear(C, O) over the
channels of a volume (also channels_last_3d); a kernel covering the volume equals flatten +
Linear; any Conv3d equals unfold + matmul and a dense Linear; Linear . Conv3d is one Linear (and
with a ReLU between them is not); default init equals Linear's; the converters compute the conv —
forward and backward."""

from properties.support import relation_property

test_conv3d_1x1_equals_linear_over_channels = relation_property("pointwise_3d")
test_full_kernel_conv3d_equals_flatten_linear = relation_property("full_kernel_3d")
test_conv3d_equals_unfold_matmul_and_dense_linear = relation_property("general_conv_3d")
test_linear_after_conv3d_is_one_linear = relation_property("composition_3d")
test_linear_after_conv3d_relu_is_not_one_linear = relation_property("composition_3d_with_activation")
test_conv3d_and_linear_init_are_bit_identical = relation_property("init_3d")
test_conv1x1_to_linear_computes_the_conv3d = relation_property("converted_pointwise_3d")
test_full_kernel_conv_to_linear_computes_the_conv3d = relation_property("converted_full_kernel_3d")
