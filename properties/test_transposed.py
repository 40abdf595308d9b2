"""ConvTranspose1d/2d/3d: a transposed conv (stride, padding, output padding, dilation, groups)
equals the input gradient of the matching conv and a dense Linear with the transposed conv
matrix; with stride == kernel it equals a Linear over channels followed by a reshape
(un-patchify); conv_to_dense_linear computes it — forward and backward."""

from properties.support import relation_property

test_conv_transpose_equals_conv_input_grad_and_dense_linear = relation_property("conv_transpose")
test_unpatchify_equals_linear_then_reshape = relation_property("unpatchify")
test_conv_to_dense_linear_computes_the_conv_transpose = relation_property("converted_conv_transpose")
