"""Init: under the same seed, Conv2d(C, O, (kh, kw), groups=g) and Linear(C/g*kh*kw, O) get
bit-identical default parameters (weight and bias)."""

from properties.support import relation_property

test_default_init_is_bit_identical = relation_property("init")
