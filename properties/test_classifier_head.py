"""Classifier head: a conv head [N, K, 1, 1] with CrossEntropyLoss on target [N, 1, 1] equals a Linear
head [N, K] with CrossEntropyLoss on target [N] (loss and gradients); a softmax before
CrossEntropyLoss changes the loss (negative control)."""

from hypothesis import assume, given

from linconv.classifier_head import run_classifier_head, softmax_then_cross_entropy
from linconv.session import SESSION
from properties.support import on_device, verify
from strategies import classifier_head_cases, dtypes


@given(case=classifier_head_cases())
def test_conv_head_cross_entropy_equals_linear_head(case, device):
    verify("classifier_head", case, device)


@given(case=classifier_head_cases(dtype_names=dtypes(allowed=("float32", "float64"))))
def test_softmax_before_cross_entropy_changes_the_loss(case, device):
    # With one class both losses are identically 0: not a counterexample, just a degenerate head.
    assume(case.geometry.out_channels >= 2)
    result = run_classifier_head(on_device(case, device), {"softmax_then_ce": softmax_then_cross_entropy})
    SESSION.record_result(result, expect_violation=True)
    loss = [c for c in result.comparisons if c.tensor == "loss"]
    assert loss and not loss[0].ok, (
        f"a softmax before CrossEntropyLoss gave the same loss as without it: {loss}; case {case.to_json()}"
    )
