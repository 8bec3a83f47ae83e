"""The CUDA path end to end: evaluation, compiled candidates and the worker pool on one GPU.

Marked ``gpu`` (excluded from the default run); run on a CUDA machine with ``pytest -m gpu``.
"""

import pytest
import torch

from architectures import create_arch
from evaluation.config import AnchorConfig, DataConfig, EvalConfig, RejectionConfig, TrainConfig, override
from evaluation.evaluate import Evaluator
from evaluation.executors import ProcessExecutor
from evaluation.result import Status
from gp import Genome, zoo
from gp.compiler import compile_layer, layer_factory, use_compiled

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def cuda_config(cifar_dir):
    return EvalConfig(anchors=(AnchorConfig("resnet50", 0.125), AnchorConfig("mobilenetv2", 0.25)),
                      data=DataConfig(source=str(cifar_dir), per_class=300, val_size=500),
                      train=TrainConfig(steps=150, batch_size=64, lr=0.05),
                      rejection=RejectionConfig(stability_steps=5, stability_batch=16, quality_step=50,
                                                quality_threshold=0.0, max_step_ratio=10),
                      device="cuda")


def test_bn_relu_passes_every_check_on_cuda(cuda_config):
    good = Evaluator(cuda_config)(zoo.get("bn_relu"))
    assert good.status is Status.OK, (good.stage, good.anchor, good.reason)
    assert good.timings["training"] > 0, good.timings


def test_bn_relu_learns_on_cuda(cuda_config):
    # the quality and step-time checks off: this test is about learning only
    cfg = override(cuda_config, **{"rejection.max_step_ratio": 0, "rejection.stability_steps": 0})
    good = Evaluator(cfg)(zoo.get("bn_relu"))
    assert good.status is Status.OK, (good.stage, good.anchor, good.reason)
    assert min(good.accuracies.values()) > 0.2, good.accuracies  # chance is 0.1


def test_unstable_layer_is_rejected_on_cuda(cuda_config):
    bad = Evaluator(cuda_config)(Genome.parse("exp(x)"))
    assert bad.status is Status.REJECTED and bad.stage == "stability", (bad.status, bad.stage, bad.reason)


def test_same_seed_same_verdict_on_cuda(cuda_config):
    ev = Evaluator(cuda_config)
    a, b = ev(zoo.get("evonorm_s0")), ev(zoo.get("evonorm_s0"))
    assert a.status == b.status
    for anchor, accuracy in a.accuracies.items():  # cuDNN may pick other kernels: close, not equal
        assert abs(b.accuracies[anchor] - accuracy) <= 0.05


@pytest.mark.parametrize("name", ["bn_relu", "evonorm_b0", "evonorm_s0"])
def test_compiled_layer_on_cuda_matches_eager_forward_and_backward(name):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(16, 32, 8, 8, generator=gen) * 2 + 1).cuda().contiguous(memory_format=torch.channels_last)
    eager = compile_layer(zoo.get(name), 32, device="cuda").train()
    compiled = compile_layer(zoo.get(name), 32, device="cuda").train()
    compiled.load_state_dict(eager.state_dict())
    use_compiled(compiled)
    outs, grads = [], []
    for layer in (eager, compiled):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = layer(xi)
        out.float().square().mean().backward()
        outs.append(out.float())
        grads.append(xi.grad.float())
    torch.testing.assert_close(outs[1], outs[0], rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(grads[1], grads[0], rtol=5e-2, atol=5e-3)


def test_anchor_trains_a_step_in_bfloat16_channels_last():
    model = create_arch("efficientnet_b0", layer_factory(zoo.get("evonorm_b0")), width=0.25).cuda()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x).float().logsumexp(1).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_several_workers_share_one_gpu(cuda_config):
    cfg = EvalConfig(anchors=cuda_config.anchors[:1], data=cuda_config.data,
                     train=TrainConfig(steps=20, batch_size=32), rejection=cuda_config.rejection, device="cuda")
    ex = ProcessExecutor(cfg, 2)
    try:
        for name in ("bn_relu", "evonorm_s0"):
            ex.submit(zoo.get(name))
        results = [ex.next_result() for _ in range(2)]
    finally:
        ex.close()
    assert sorted(g.key for g, _ in results) == sorted(zoo.get(n).key for n in ("bn_relu", "evonorm_s0"))
    assert all(r.status is Status.OK for _, r in results), [r.reason for _, r in results]
