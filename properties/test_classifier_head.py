"""Classifier head: a conv head [N, K, 1, 1] with CrossEntropyLoss on target [N, 1, 1] equals a Linear
head [N, K] with CrossEntropyLoss on target [N] (loss and gradients); a softmax before
CrossEntropyLoss changes the loss (negative control)."""

from properties.support import relation_property

test_conv_head_cross_entropy_equals_linear_head = relation_property("classifier_head")
test_softmax_before_cross_entropy_changes_the_loss = relation_property("classifier_head_with_softmax")
