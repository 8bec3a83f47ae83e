"""MobileNetV2 (Sandler et al. 2018), width multiplier, channels rounded to multiples of 8.

Inverted residuals: 1x1 expansion, norm-act, 3x3 depthwise, norm-act, 1x1 projection and a
normalization with *no* activation (the linear bottleneck): that position is built with
``apply_act=False``, so the network's policy for it (affine, candidate or BatchNorm) decides.
In the CIFAR form the stem and the first stride-2 stage (24 channels) have stride 1.
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.common import NormAct, bn_relu, classifier, conv, init_weights, make_divisible

# expansion t, channels c, repeats n, first stride s
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, norm_act: NormAct) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv(cin, hidden, 1), norm_act(hidden)]
        layers += [conv(hidden, hidden, 3, stride, groups=hidden), norm_act(hidden),
                   conv(hidden, cout, 1), norm_act(cout, apply_act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    def __init__(self, norm_act: NormAct = bn_relu, *, width: float = 1.0, num_classes: int = 10,
                 cifar: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        cin = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [conv(3, cin, 3, 1 if cifar else 2), norm_act(cin)]
        first_down = True
        for t, c, n, s in SETTINGS:
            cout = make_divisible(c * width)
            if s == 2 and cifar and first_down:
                s, first_down = 1, False
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, norm_act))
                cin = cout
        layers += [conv(cin, last, 1), norm_act(last)]
        self.features = nn.Sequential(*layers)
        self.head = classifier(last, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, classes)
        return self.head(self.features(x))
