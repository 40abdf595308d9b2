"""Patch embedding: a conv with stride == kernel (no padding, no dilation; a ViT or ConvNeXt stem)
equals non-overlapping patches and one Linear, a remainder dropped by both; the converter's Linear
computes it — forward and backward, 1-D, 2-D and 3-D."""

from properties.support import relation_property

test_patch_embedding_equals_patches_and_linear = relation_property("patch_embedding")
test_patch_embedding_to_linear_computes_the_conv = relation_property("converted_patch_embedding")
