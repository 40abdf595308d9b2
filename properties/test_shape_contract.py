"""Shape contracts: every formulation of a relation refuses the same invalid input — a wrong
in_features or C_in, groups that do not divide the channels, a kernel larger than the padded
input — with an error that names the mismatch; one that truncates, pads or broadcasts its way
through violates the contract."""

from properties.support import relation_property

test_linear_formulations_refuse_a_wrong_in_features = relation_property("shape_contract_linear")
test_conv_formulations_refuse_invalid_shapes = relation_property("shape_contract_conv")
