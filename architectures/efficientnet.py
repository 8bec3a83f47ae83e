"""EfficientNet-B0 (Tan & Le 2019): MBConv blocks with squeeze-excitation, SiLU (Swish).

The candidate replaces every BN-Swish; each block's projection is normalised with no activation
(built with ``apply_act=False``). Squeeze-excitation and stochastic depth are torchvision's own
``torchvision.ops`` blocks. In the CIFAR form the stem and the first stride-2 stage have stride 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation, StochasticDepth

from architectures.common import NormAct, bn_silu, classifier, conv, init_weights, make_divisible

# expansion, kernel, first stride, channels, repeats
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, norm_act: NormAct,
                 drop: float) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv(cin, hidden, 1), norm_act(hidden)]
        layers += [conv(hidden, hidden, kernel, stride, groups=hidden), norm_act(hidden),
                   SqueezeExcitation(hidden, max(1, cin // 4), activation=nn.SiLU),
                   conv(hidden, cout, 1), norm_act(cout, apply_act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = StochasticDepth(drop, "row") if self.residual and drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.body(x)) if self.residual else self.body(x)


class EfficientNetB0(nn.Module):
    def __init__(self, norm_act: NormAct = bn_silu, *, width: float = 1.0, num_classes: int = 10,
                 cifar: bool = True, stochastic_depth: float = 0.0, dropout: float = 0.2) -> None:
        super().__init__()
        cin = make_divisible(32 * width)
        layers: list[nn.Module] = [conv(3, cin, 3, 1 if cifar else 2), norm_act(cin)]
        total = sum(s[4] for s in STAGES)
        first_down, index = True, 0
        for expand, kernel, stride, c, n in STAGES:
            cout = make_divisible(c * width)
            if stride == 2 and cifar and first_down:
                stride, first_down = 1, False
            for i in range(n):
                drop = stochastic_depth * index / total
                layers.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand, norm_act, drop))
                cin, index = cout, index + 1
        last = 4 * cin
        layers += [conv(cin, last, 1), norm_act(last)]
        self.features = nn.Sequential(*layers)
        self.head = classifier(last, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, classes)
        return self.head(self.features(x))
