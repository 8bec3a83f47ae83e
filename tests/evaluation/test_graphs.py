"""The optimiser of graph-captured training steps (evaluation/graphs.py) on the CPU: the same
arithmetic as ``torch.optim.SGD`` with Nesterov momentum, weight decay and the warm-up/cosine
schedule. The capture itself needs CUDA: tests/evaluation/test_gpu.py."""

import pytest
import torch

from architectures import create_arch
from evaluation.graphs import StaticSGD
from evaluation.train import lr_factor, param_groups
from gp import layer_factory, zoo


@pytest.mark.parametrize("name", ["bn_relu", "evonorm_s0"])
def test_static_sgd_follows_torch_sgd_step_by_step(name):
    def model():
        torch.manual_seed(0)
        return create_arch("resnet50", layer_factory(zoo.get(name)), width=0.0625).double()

    ours, theirs = model(), model()
    steps, lr, momentum, decay, warmup = 6, 0.02, 0.9, 5e-4, 0.3
    opt = StaticSGD(param_groups(ours, decay), momentum, torch.device("cpu"))
    ref = torch.optim.SGD(param_groups(theirs, decay), lr=lr, momentum=momentum, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(ref, lambda s: lr_factor(s, steps, warmup))
    gen = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        # float64: last-bit differences can grow 1,000-fold a step in this narrow network (its
        # deepest BatchNorms see few values), too fast to compare float32 runs over six steps
        x = torch.randn(16, 3, 32, 32, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 10, (16,), generator=gen)
        opt.set_lr(lr * lr_factor(step - 1, steps, warmup))
        assert float(opt.lr) == pytest.approx(ref.param_groups[0]["lr"], rel=1e-6)
        for net, zero, update in ((ours, opt.zero_grad, opt.step), (theirs, lambda: ref.zero_grad(True), ref.step)):
            zero()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            update()
        sched.step()
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        tol = 1e-7 if a.dtype == torch.float64 else 1e-5  # genome layers keep running estimates in float32
        assert torch.allclose(a.double(), b.double(), rtol=tol, atol=tol), key
    trained = [(a, b) for a, b in zip(ours.parameters(), model().parameters(), strict=True) if a.grad is not None]
    assert len(trained) > 100 and all(not torch.equal(a, b) for a, b in trained)  # the weights compared moved


def test_static_sgd_skips_parameters_without_gradient():
    used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = StaticSGD([{"params": [used, unused], "weight_decay": 0.1}], 0.9, torch.device("cpu"))
    opt.set_lr(0.5)
    (used * 2).sum().backward()
    opt.step()
    assert torch.equal(unused.detach(), torch.ones(3))
    assert torch.allclose(used.detach(), torch.ones(3) - 0.5 * (2.1 + 0.9 * 2.1))
