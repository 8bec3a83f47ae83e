"""The reference layer: a genome interpreted op by op, as :mod:`gp.compiler` did before it
generated code. Kept as the oracle that the generated layer is tested against, and as the
"before" of ``benchmarks/layer_speed.py``; networks use :class:`gp.GenomeLayer`.

It walks the live nodes in order every forward, casts the parameters to the input's dtype and
allocates the constant 0 each time; numerics are those of the op table's functions, unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from gp import ops, stats
from gp.compiler import MOMENTUM, init_parameters
from gp.genome import NUM_INPUTS, Genome


class InterpretedLayer(nn.Module):
    """Same parameters, buffers and function as :class:`gp.GenomeLayer`, computed by a loop."""

    def __init__(self, genome: Genome, num_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        init_parameters(self, genome, num_features, device=device, dtype=dtype)
        # one running estimate per batch aggregate, named after its node
        self._program: list[tuple[int, ops.Op, tuple[int, ...], str | None]] = []
        for k, node in enumerate(self.genome.nodes):
            op = ops.OPS[node.op]
            buffer = None
            if op.uses_batch:
                buffer = f"running_t{k + 1}"
                init = torch.zeros if op.statistic == "mean" else torch.ones  # mean 0, var 1, E[x^2] 1
                self.register_buffer(buffer, init(num_features, device=device, dtype=torch.float32))
            self._program.append((NUM_INPUTS + k, op, node.inputs, buffer))

    def extra_repr(self) -> str:
        return f"{self.num_features}, genome='{self.genome}'"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H, W)
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected input (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        values: list[torch.Tensor] = [x, x.new_zeros(()), self.v0.to(x.dtype), self.v1.to(x.dtype)]
        for _, op, inputs, buffer in self._program:
            args = [values[i] for i in inputs]
            values.append(self._batch_stat(op, args[0], buffer) if buffer else op.fn(*args))
        y = values[-1].to(x.dtype)
        return torch.addcmul(self.beta.to(x.dtype), y, self.gamma.to(x.dtype)).expand_as(x)

    def _batch_stat(self, op: ops.Op, a: torch.Tensor, buffer: str) -> torch.Tensor:
        running: torch.Tensor = getattr(self, buffer)
        if not self.training:
            r = running if op.statistic != "std" else torch.sqrt(running + stats.EPS)
            return r.reshape(1, -1, 1, 1).to(a.dtype)
        if op.statistic == "std":
            var = stats.variance(a, "batch")  # float32, biased: what std_batch uses
            out = torch.sqrt(var + stats.EPS).to(a.dtype)
            # the running estimate keeps the unbiased variance, as BatchNorm2d; n = N*H*W per channel
            n = a.shape[0] * a.shape[2] * a.shape[3] if a.dim() == 4 else 1
            observed = var * (n / (n - 1)) if n > 1 else var
        else:
            out = observed = op.fn(a)
        with torch.no_grad():
            running.lerp_(observed.detach().float().reshape(-1).expand(self.num_features), MOMENTUM)
        return out
