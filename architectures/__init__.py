"""The anchor CNNs of the paper, each taking a norm-act factory; they never import the search.

``create_arch(name, norm_act, num_classes=10, width=None)``; the paper's widths are the defaults:
pre-activation ResNet-50 0.25x, MobileNetV2 0.5x, EfficientNet-B0 0.5x, each in the CIFAR form
(first two down-sampling strides set to 1) unless ``cifar=False``. ``plain`` is not the paper's:
a VGG-style chain without shortcuts (:mod:`architectures.plain`; in CIFAR form only its stem's
stride is 1), a cheap anchor in which a layer that does not normalize shows it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from architectures.common import BatchNormAct, NormAct, bn_relu, bn_silu, make_divisible
from architectures.efficientnet import EfficientNetB0
from architectures.mobilenet import MobileNetV2
from architectures.plain import PlainNet
from architectures.resnet import PreActResNet

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], float, NormAct]] = {
    # name: (constructor, paper width, the reference norm-act the candidate replaces)
    "resnet50": (PreActResNet, 0.25, bn_relu),
    "mobilenetv2": (MobileNetV2, 0.5, bn_relu),
    "efficientnet_b0": (EfficientNetB0, 0.5, bn_silu),
    # not the paper's: a chain without shortcuts, a cheap second anchor for CPU proxies
    "plain": (PlainNet, 0.25, bn_relu),
}


def names() -> list[str]:
    return list(_REGISTRY)


def default_width(name: str) -> float:
    return _entry(name)[1]


def reference_norm_act(name: str) -> NormAct:
    """BN-ReLU, or BN-Swish for EfficientNet: what the network uses without a candidate."""
    return _entry(name)[2]


def _entry(name: str):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(_REGISTRY)}") from None


def create_arch(name: str, norm_act: NormAct | None = None, num_classes: int = 10, width: float | None = None,
                **kwargs) -> nn.Module:
    """Build an anchor network; ``norm_act`` defaults to the network's own BN-ReLU / BN-Swish."""
    ctor, paper_width, reference = _entry(name)
    if width is not None and width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return ctor(norm_act or reference, width=paper_width if width is None else width, num_classes=num_classes,
                **kwargs)


__all__ = ["BatchNormAct", "NormAct", "bn_relu", "bn_silu", "create_arch", "default_width", "make_divisible",
           "names", "reference_norm_act"]
