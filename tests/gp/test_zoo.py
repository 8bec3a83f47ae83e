"""Each zoo layer against a reference written from the paper's formula (not from our expressions),
in train and eval modes."""

import pytest
import torch
from torch import nn

from gp import compile_layer, formula, layer_factory, zoo

C = 64
EPS = 1e-5


def _std(x, dims):
    return torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + EPS)


def _group(x, fn):
    n, c, h, w = x.shape
    g = x.reshape(n, 32, c // 32, h, w)
    return fn(g, (2, 3, 4)).expand_as(g).reshape(n, c, h, w)


def _sqrt_sqmean(x, dims):
    return torch.sqrt((x * x).mean(dims, keepdim=True) + EPS)


# reference(x, v1, s_b, mu_b) -> graph output; s_b / mu_b are BN's batch or running statistics.
# v1 is a trainable vector in the paper's B0 and S0 only; B1's one is the number 1.
PAPER_V1 = {"evonorm_b0", "evonorm_s0"}
REFERENCES = {
    "bn_relu": lambda x, v1, s_b, mu_b: torch.relu((x - mu_b) / s_b),
    "bn_silu": lambda x, v1, s_b, mu_b: nn.functional.silu((x - mu_b) / s_b),
    "gn_relu": lambda x, v1, s_b, mu_b: torch.relu(
        (x - _group(x, lambda g, d: g.mean(d, keepdim=True))) / _group(x, _std)),
    "evonorm_b0": lambda x, v1, s_b, mu_b: x / torch.maximum(s_b, v1 * x + _std(x, (2, 3))),
    "evonorm_b1": lambda x, v1, s_b, mu_b: x / torch.maximum(s_b, (x + 1) * _sqrt_sqmean(x, (2, 3))),
    "evonorm_b2": lambda x, v1, s_b, mu_b: x / torch.maximum(s_b, _sqrt_sqmean(x, (2, 3)) - x),
    "evonorm_s0": lambda x, v1, s_b, mu_b: x * torch.sigmoid(v1 * x) / _group(x, _std),
    "evonorm_s1": lambda x, v1, s_b, mu_b: x * torch.sigmoid(x) / _group(x, _std),
    "evonorm_s2": lambda x, v1, s_b, mu_b: x * torch.sigmoid(x) / _group(x, _sqrt_sqmean),
}


def test_every_zoo_layer_has_a_reference():
    assert set(zoo.names()) == set(REFERENCES)


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_zoo_layer_matches_reference_in_train_and_eval(name, dtype, channels_last, gen):
    """The reference runs in float32 on the same (rounded) input; bfloat16 layers compute their
    element-wise ops in bfloat16, hence the looser tolerance. v1 is randomised where the paper's
    formula has it, and left at its initial 1 elsewhere (B1: see the deviation test below)."""
    _check_against_paper(compile_layer(zoo.get(name), C), REFERENCES[name], dtype, channels_last, gen,
                         random_v1=name in PAPER_V1)


def _check_against_paper(layer, reference, dtype, channels_last, gen, *, random_v1: bool) -> None:
    tracker = nn.BatchNorm2d(C, affine=False)  # the reference's running statistics
    with torch.no_grad():
        if random_v1:
            layer.v1.copy_(torch.rand(1, C, 1, 1, generator=gen) + 0.5)
        layer.gamma.copy_(torch.rand(1, C, 1, 1, generator=gen) + 0.5)
        layer.beta.copy_(torch.randn(1, C, 1, 1, generator=gen))
    affine = lambda y: y * layer.gamma + layer.beta  # noqa: E731
    tol = 1e-4 if dtype == torch.float32 else 6e-2

    def check(x, s_b, mu_b):
        xin = x.to(dtype)
        if channels_last:
            xin = xin.contiguous(memory_format=torch.channels_last)
        out = layer(xin)
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), affine(reference(xin.float(), layer.v1, s_b, mu_b)),
                                   rtol=tol, atol=tol)

    with torch.no_grad():
        for _ in range(3):
            x = (torch.randn(8, C, 5, 5, generator=gen) * 2 + 1).to(dtype).float()
            tracker.train()(x)
            layer.train()
            check(x, _std(x, (0, 2, 3)), x.mean((0, 2, 3), keepdim=True))
        x = (torch.randn(8, C, 5, 5, generator=gen) * 2 + 1).to(dtype).float()
        s_run = torch.sqrt(tracker.running_var + EPS).reshape(1, C, 1, 1)
        mu_run = tracker.running_mean.reshape(1, C, 1, 1)
        layer.eval()
        check(x, s_run, mu_run)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_papers_exact_evonorm_b1_matches_its_formula_whatever_v1(dtype, gen):
    """``x + exp(zero)``: a fixed one, so the layer is the paper's at any value of its parameters."""
    layer = compile_layer(zoo.EVONORM_B1_PAPER, C)
    _check_against_paper(layer, REFERENCES["evonorm_b1"], dtype, False, gen, random_v1=True)


def test_zoo_evonorm_b1_deviates_from_the_paper_only_once_v1_trains(gen):
    """The stated deviation (gp/zoo.py): zoo B1 learns its one. At v1 = 1 (its initial value) it is
    the paper's layer; at v1 = 1.5 it is not, and it is x + v1 that it computes."""
    zoo_b1, paper_b1 = compile_layer(zoo.get("evonorm_b1"), C), compile_layer(zoo.EVONORM_B1_PAPER, C)
    x = torch.randn(8, C, 5, 5, generator=gen) * 2 + 1
    with torch.no_grad():
        assert torch.equal(zoo_b1.v1, torch.ones_like(zoo_b1.v1))
        torch.testing.assert_close(zoo_b1.train()(x), paper_b1.train()(x), rtol=1e-6, atol=1e-6)
        zoo_b1.v1.fill_(1.5)
        assert not torch.allclose(zoo_b1.train()(x), paper_b1.train()(x), rtol=1e-2, atol=1e-2)
        s_b = _std(x, (0, 2, 3))
        torch.testing.assert_close(zoo_b1.train()(x), x / torch.maximum(s_b, (x + 1.5) * _sqrt_sqmean(x, (2, 3))),
                                   rtol=1e-4, atol=1e-4)
    assert zoo.EVONORM_B1_PAPER.key != zoo.get("evonorm_b1").key


def test_bn_relu_equals_batchnorm_relu_with_running_statistics(gen):
    layer = compile_layer(zoo.get("bn_relu"), C)
    bn = nn.BatchNorm2d(C)
    for _ in range(4):
        x = torch.randn(16, C, 4, 4, generator=gen) * 3 - 1
        torch.testing.assert_close(layer.train()(x), torch.relu(bn.train()(x)), rtol=1e-5, atol=1e-5)
    mean_buf, var_buf = (getattr(layer, n) for n in sorted(n for n, _ in layer.named_buffers()))
    torch.testing.assert_close(mean_buf, bn.running_mean)
    torch.testing.assert_close(var_buf, bn.running_var)
    x = torch.randn(16, C, 4, 4, generator=gen)
    torch.testing.assert_close(layer.eval()(x), torch.relu(bn.eval()(x)), rtol=1e-5, atol=1e-5)


def test_gn_relu_equals_groupnorm_relu(gen):
    layer = compile_layer(zoo.get("gn_relu"), C)
    gn = nn.GroupNorm(32, C)
    x = torch.randn(4, C, 6, 6, generator=gen) * 2 + 3
    torch.testing.assert_close(layer.train()(x), torch.relu(gn(x)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.eval()(x), torch.relu(gn(x)), rtol=1e-5, atol=1e-5)


def test_zoo_formulas_read_like_the_paper():
    assert formula(zoo.get("evonorm_s0")) == "x·σ(v1·x) / std_group(x)"
    assert formula(zoo.get("evonorm_b0")) == "x / max(std_batch(x), v1·x + std_instance(x))"
    assert formula(zoo.get("bn_relu")) == "max((x - mean_batch(x)) / std_batch(x), 0)"
    assert formula(zoo.get("evonorm_s0"), latex=True) == (
        "\\frac{x \\cdot \\sigma(v_1 \\cdot x)}{s_{\\mathrm{group}}(x)}")


def test_unknown_zoo_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="evonorm_b0"):
        zoo.get("evonorm_b9")


def test_factory_contract_and_no_activation_policies():
    f = layer_factory(zoo.get("evonorm_b0"))
    assert sorted(n for n, _ in f(8).named_parameters()) == ["beta", "gamma", "v0", "v1"]
    assert type(f(8, apply_act=False)).__name__ == "Affine"
    assert isinstance(layer_factory(zoo.get("evonorm_b0"), no_act="batchnorm")(8, apply_act=False), nn.BatchNorm2d)
    assert type(layer_factory(zoo.get("evonorm_b0"), no_act="candidate")(8, apply_act=False)).__name__ == "GenomeLayer"
    with pytest.raises(ValueError, match="unknown no-activation policy 'relu'"):
        layer_factory(zoo.get("evonorm_b0"), no_act="relu")
