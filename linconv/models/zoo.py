"""Small models of linconv's own, for ``python -m linconv model linconv.models.zoo:NAME``: the
classifier heads people ask about, at the reduction lengths real networks have (random init).
They need nothing beyond torch, so the suite's own tests check them (tests/test_models.py)."""

from __future__ import annotations

from torch import nn

__all__ = [
    "conv_head",
    "conv_linear_head",
    "conv_relu_linear_head",
    "resnet18_conv_head",
    "resnet50_conv_head",
    "resnet50_conv_head_448",
]


def conv_head(channels: int, size: int, classes: int) -> nn.Module:
    """A kernel-covering ``Conv2d(channels, classes, size)`` head on ``[N, channels, size, size]``
    (instead of avgpool + Linear), giving ``[N, classes, 1, 1]``; K = channels * size**2."""
    return nn.Sequential(nn.Conv2d(channels, classes, size), nn.Flatten())


def resnet18_conv_head() -> nn.Module:
    """ResNet-18's last feature map [N, 512, 7, 7] -> 1000 classes by one conv: K = 25,088."""
    return conv_head(512, 7, 1000)


def resnet50_conv_head() -> nn.Module:
    """ResNet-50's last feature map [N, 2048, 7, 7] -> 10 classes by one conv: K = 100,352."""
    return conv_head(2048, 7, 10)


def resnet50_conv_head_448() -> nn.Module:
    """ResNet-50 at 448x448: [N, 2048, 14, 14] -> 10 classes by one conv: K = 401,408."""
    return conv_head(2048, 14, 10)


def conv_linear_head() -> nn.Module:
    """``Conv2d(512, 256, 7)`` then ``Linear(256, 1000)`` with nothing between: one Linear."""
    return nn.Sequential(nn.Conv2d(512, 256, 7), nn.Flatten(), nn.Linear(256, 1000))


def conv_relu_linear_head() -> nn.Module:
    """The same with a ReLU between: no longer one Linear (the model check finds no pair)."""
    return nn.Sequential(nn.Conv2d(512, 256, 7), nn.ReLU(), nn.Flatten(), nn.Linear(256, 1000))
