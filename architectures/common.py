"""What every anchor network shares: the norm-act factory contract and small helpers."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NormAct = Callable[..., nn.Module]
"""``factory(num_features, *, apply_act=True) -> nn.Module``: a normalization followed by the
network's activation (or, with ``apply_act=False``, a normalization alone)."""


class BatchNormAct(nn.Sequential):
    """BatchNorm2d followed by an activation: the layer a candidate replaces."""

    def __init__(self, num_features: int, *, apply_act: bool = True, act: type[nn.Module] = nn.ReLU,
                 device=None, dtype=None) -> None:
        layers = [nn.BatchNorm2d(num_features, device=device, dtype=dtype)]
        if apply_act:
            layers.append(act(inplace=True))
        super().__init__(*layers)


def bn_relu(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> nn.Module:
    return BatchNormAct(num_features, apply_act=apply_act, act=nn.ReLU, device=device, dtype=dtype)


def bn_silu(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> nn.Module:
    return BatchNormAct(num_features, apply_act=apply_act, act=nn.SiLU, device=device, dtype=dtype)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10% below ``value`` (the
    MobileNet/EfficientNet rule)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)


def classifier(channels: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pooling, dropout, linear: the head of every anchor."""
    layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
    return nn.Sequential(*layers, nn.Linear(channels, num_classes))


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions, small-normal classifier, as the reference implementations."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
