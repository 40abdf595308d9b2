"""Linear over the last dimension of an input of any rank: Linear(C, O) on [N, L, C], [N, H, W, C]
or [N, D, H, W, C] equals flattening the leading dimensions, one 2-D Linear and unflattening, the
Linear on each row [C], and a 1x1 conv on [N, C, *size]; with no in features it returns its bias,
with no out features an empty output — forward and backward."""

from properties.support import relation_property

test_linear_any_rank_equals_flatten_linear_and_conv1x1 = relation_property("linear_last_dim")
test_linear_with_no_features_returns_its_bias = relation_property("linear_empty_features")
