"""A plain VGG-style network: convolutions and norm-acts in a chain, no shortcuts.

Not one of the paper's anchors. In a ResNet every unit adds its input back, so the signal reaches
the head whatever the norm-act sites do: a network whose sites are linear, or ``tanh``, trains
there about as fast as one with BN-ReLU in a short proxy training (docs/results.md §2d). Here the
norm-act sites are the only non-linearity and every path goes through all of them, so a layer that
does not normalize, or is linear, shows it. Cheap enough to be a second anchor of the CPU proxies.

``stem conv3x3 -> na`` then three stages of ``depth`` units ``conv3x3 -> na`` (the first unit of
stages 2 and 3 has stride 2), then pooling and a linear head. Width 1.0 is 64 / 128 / 256
channels; the CIFAR form keeps full resolution in stage 1 (``cifar=False`` adds a stride-2 stem).
"""

from __future__ import annotations

import torch
from torch import nn

from architectures.common import NormAct, bn_relu, classifier, conv, init_weights


class PlainNet(nn.Module):
    def __init__(self, norm_act: NormAct = bn_relu, *, depths=(2, 2, 2), width: float = 1.0,
                 num_classes: int = 10, cifar: bool = True) -> None:
        super().__init__()
        base = max(1, int(round(64 * width)))
        self.stem = nn.Sequential(conv(3, base, 3, 1 if cifar else 2), norm_act(base))
        units, cin = [], base
        for stage, depth in enumerate(depths):
            cout = base * 2**stage
            for i in range(depth):
                units += [conv(cin, cout, 3, 2 if stage > 0 and i == 0 else 1), norm_act(cout)]
                cin = cout
        self.features = nn.Sequential(*units)
        self.head = classifier(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, classes)
        return self.head(self.features(self.stem(x)))
