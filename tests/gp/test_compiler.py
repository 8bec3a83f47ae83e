import pytest
import torch

from gp import Genome, compile_layer, zoo


@pytest.mark.parametrize("name", ["bn_relu", "evonorm_b0", "evonorm_s0", "gn_relu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_dtypes_and_memory_formats(name, dtype, channels_last, gen):
    x = torch.randn(8, 64, 6, 6, generator=gen) * 2 + 1
    ref = compile_layer(zoo.get(name), 64).train()(x)
    layer = compile_layer(zoo.get(name), 64).train()
    xin = x.to(dtype)
    if channels_last:
        xin = xin.contiguous(memory_format=torch.channels_last)
    out = layer(xin)
    assert out.dtype == dtype and out.shape == x.shape
    tol = 1e-5 if dtype == torch.float32 else 6e-2
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)
    out.float().sum().backward()
    assert torch.isfinite(layer.v1.grad).all() if layer.v1.grad is not None else True


def test_parameters_buffers_and_dead_node_removal():
    g = Genome.parse("t1 = exp(x); t2 = std_batch(x); t3 = mean_batch(x); t4 = div(x, t2)")
    layer = compile_layer(g, 16)
    assert sorted(n for n, _ in layer.named_parameters()) == ["beta", "gamma", "v0", "v1"]
    assert [n for n, _ in layer.named_buffers()] == ["running_t1"]  # one live batch aggregate
    assert len(layer.genome.nodes) == 2
    assert torch.equal(layer.v0, torch.zeros(1, 16, 1, 1)) and torch.equal(layer.v1, torch.ones(1, 16, 1, 1))


def test_eval_mode_uses_running_estimates_not_the_batch(gen):
    layer = compile_layer(zoo.get("evonorm_b0"), 8)
    layer.eval()
    x = torch.randn(4, 8, 3, 3, generator=gen)
    first = layer(x)
    second = layer(torch.cat([x[:1], x[1:] * 100]))[:1]
    torch.testing.assert_close(first[:1], second)  # sample 0 unaffected by the rest of the batch


def test_running_estimate_of_a_per_channel_node():
    layer = compile_layer(Genome.from_expression("div(x, std_batch(v1))"), 4).train()
    layer(torch.randn(2, 4, 3, 3))
    assert torch.isfinite(layer.running_t1).all()


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected input \(N, 8, H, W\), got \(2, 4, 3, 3\)"):
        compile_layer(zoo.get("bn_relu"), 8)(torch.randn(2, 4, 3, 3))


def test_device_and_dtype_arguments():
    layer = compile_layer(zoo.get("evonorm_s0"), 8, device="cpu", dtype=torch.float64)
    assert layer.v1.dtype == torch.float64
    assert layer(torch.randn(2, 8, 3, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", zoo.names())
def test_cuda_bfloat16_channels_last_matches_cpu(name):
    x = torch.randn(8, 64, 8, 8) * 2 + 1
    ref = compile_layer(zoo.get(name), 64).train()(x)
    layer = compile_layer(zoo.get(name), 64, device="cuda").train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = layer(x.cuda().bfloat16().contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.float().cpu(), ref, rtol=6e-2, atol=6e-2)
