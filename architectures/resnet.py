"""Pre-activation ResNet-50 (v2; He et al. 2016, "Identity Mappings"), bottlenecks 3-4-6-3.

Each unit is ``x + conv(na(conv(na(conv(na(x))))))`` where ``na`` is the norm-act; the projection
shortcut reads the pre-activated input. A final norm-act precedes pooling. Every norm here is
followed by a ReLU, so the candidate replaces all of them. Down-sampling sits in the first unit of
stages 2-4; in the CIFAR form the stem convolution and stage 2 have stride 1 (the max-pool stays).
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.common import NormAct, bn_relu, classifier, conv, init_weights

EXPANSION = 4


class PreActBottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int, norm_act: NormAct) -> None:
        super().__init__()
        cout = width * EXPANSION
        self.preact = norm_act(cin)
        self.shortcut = conv(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.conv1 = conv(cin, width, 1)
        self.na2 = norm_act(width)
        self.conv2 = conv(width, width, 3, stride)
        self.na3 = norm_act(width)
        self.conv3 = conv(width, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preact(x)
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return shortcut + self.conv3(self.na3(self.conv2(self.na2(self.conv1(pre)))))


class PreActResNet(nn.Module):
    def __init__(self, norm_act: NormAct = bn_relu, *, depths=(3, 4, 6, 3), width: float = 1.0,
                 num_classes: int = 10, cifar: bool = True) -> None:
        super().__init__()
        base = max(1, int(round(64 * width)))
        self.stem = nn.Sequential(conv(3, base, 7, 1 if cifar else 2), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], base
        for stage, depth in enumerate(depths):
            w = base * 2**stage
            first_stride = 1 if stage == 0 or (cifar and stage == 1) else 2
            for i in range(depth):
                blocks.append(PreActBottleneck(cin, w, first_stride if i == 0 else 1, norm_act))
                cin = w * EXPANSION
        self.blocks = nn.Sequential(*blocks)
        self.post = norm_act(cin)
        self.head = classifier(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, classes)
        return self.head(self.post(self.blocks(self.stem(x))))
