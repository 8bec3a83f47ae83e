import itertools

import pytest
import torch

from gp import ops, stats

EDGE = [0.0, -0.0, 1.0, -1.0, -3.5, 1e30, -1e30, 1e-30, -1e-30]


def _edge_tensor() -> torch.Tensor:
    """(9, 9, 2, 2) covering every pair of edge values along N and C."""
    vals = torch.tensor(EDGE)
    return (vals[:, None, None, None] + 0 * vals[None, :, None, None]).expand(9, 9, 2, 2).clone()


def test_table_has_the_papers_24_ops():
    elementwise = [o for o in ops.OPS.values() if not o.is_aggregate]
    aggregates = [o for o in ops.OPS.values() if o.is_aggregate]
    assert [o.name for o in elementwise] == ["add", "mul", "div", "max", "neg", "sigmoid", "tanh", "exp",
                                             "abs", "square", "log", "sqrt"]
    assert sorted(o.name for o in aggregates) == sorted(
        f"{s}_{i}" for s in ("mean", "sqmean", "std") for i in stats.INDEX_SETS)
    assert {o.name for o in ops.OPS.values() if o.uses_batch} == {"mean_batch", "sqmean_batch", "std_batch"}


@pytest.mark.parametrize("op", [o for o in ops.OPS.values() if o.arity == 1], ids=lambda o: o.name)
def test_unary_ops_on_edge_values(op):
    x = _edge_tensor()
    out = op.fn(x)
    assert not torch.isnan(out).any(), op.name
    if not op.can_overflow:
        assert torch.isfinite(out).all(), op.name


@pytest.mark.parametrize("op", [o for o in ops.OPS.values() if o.arity == 2], ids=lambda o: o.name)
def test_binary_ops_on_edge_values(op):
    pairs = torch.tensor(list(itertools.product(EDGE, EDGE)))
    out = op.fn(pairs[:, 0], pairs[:, 1])
    assert not torch.isnan(out).any(), op.name
    if not op.can_overflow:
        assert torch.isfinite(out).all(), op.name


def test_div_guard_is_exact_away_from_zero_and_finite_at_zero():
    a = torch.tensor([1.0, 1.0, 1.0, 2.0])
    b = torch.tensor([0.0, -1e-30, 4.0, -0.5])
    assert torch.equal(ops.div(a, b), torch.tensor([1 / ops.GUARD_EPS, -1 / ops.GUARD_EPS, 0.25, -4.0]))


@pytest.mark.parametrize("name", ["log", "sqrt"])
def test_guarded_unary_ops_have_finite_gradients_at_edges(name):
    x = torch.tensor(EDGE, requires_grad=True)
    ops.OPS[name].fn(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_log_and_sqrt_are_signed():
    x = torch.tensor([-4.0, 0.0, 4.0])
    assert torch.allclose(ops.sqrt(x), torch.tensor([-2.0, 0.0, 2.0]))
    assert torch.allclose(ops.log(x), torch.tensor([-1.3862944, 0.0, 1.3862944]))


def test_statistics_match_torch_reductions(gen):
    x = torch.randn(4, 64, 5, 5, generator=gen) * 3 + 1
    assert torch.allclose(stats.mean(x, "instance"), x.mean((2, 3), keepdim=True))
    assert torch.allclose(stats.sqmean(x, "layer"), (x * x).mean((1, 2, 3), keepdim=True))
    assert torch.allclose(stats.std(x, "batch"), torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5))
    g = x.reshape(4, 32, 2, 5, 5)
    ref = torch.sqrt(g.var((2, 3, 4), unbiased=False, keepdim=True) + 1e-5).expand_as(g).reshape(x.shape)
    assert torch.allclose(stats.std(x, "group").expand_as(x), ref)


def test_group_count_decrements_until_it_divides():
    assert stats.group_count(64) == 32
    assert stats.group_count(24) == 24
    assert stats.group_count(40) == 20
    assert stats.group_count(1) == 1


def _bf16_exact(gen) -> torch.Tensor:
    """Values every one of which bfloat16 holds exactly (even integers 256..286, shifted by 64 per
    channel), so the input itself loses nothing and any difference comes from the reduction: at
    this magnitude bfloat16 spaces its values 2 apart, and x^2 (~65,536) 512 apart."""
    k = 256 + 2 * torch.randperm(16, generator=gen).float().reshape(1, 1, 4, 4)  # (1, 1, H, W)
    x = k.repeat(2, 3, 1, 1) + 64 * torch.arange(3.0).reshape(1, 3, 1, 1)  # (N, C, H, W)
    assert torch.equal(x.bfloat16().float(), x)
    return x.bfloat16()


@pytest.mark.parametrize("index_set", ["instance", "batch"])
def test_statistics_are_float32_for_bfloat16_inputs(index_set, gen):
    x = _bf16_exact(gen)
    dims = {"instance": (2, 3), "batch": (0, 2, 3)}[index_set]
    ref = x.double().var(dims, unbiased=False, keepdim=True)  # the exact answer
    # the naive bfloat16 reduction, E[x^2] - E[x]^2 with every intermediate in bfloat16, cancels
    # catastrophically: its variance is 0 or negative where the true one is 85
    m, m2 = x.mean(dims, keepdim=True), (x * x).mean(dims, keepdim=True)
    naive = torch.sqrt((m2 - m * m).float().clamp_min(0) + 1e-5)
    assert m.dtype == torch.bfloat16 and (naive < 1).all()
    variance = stats.variance(x, index_set)
    assert variance.dtype == torch.float32
    torch.testing.assert_close(variance.double(), ref, rtol=1e-6, atol=1e-6)
    out = stats.std(x, index_set)
    assert out.dtype == torch.bfloat16  # computed in float32, returned in the input's dtype
    torch.testing.assert_close(out.float(), torch.sqrt(ref + 1e-5).float(), rtol=2 ** -8, atol=0)
    assert not torch.allclose(out.float(), naive, rtol=0.5)


def test_statistics_broadcast_on_smaller_tensors():
    v = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert stats.mean(v, "group").shape == (1, 8, 1, 1)
    assert stats.std(torch.zeros(()), "batch").shape == (1, 1, 1, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("shape_a", "shape_b"), [((4, 8, 3, 3), (4, 8, 3, 3)), ((4, 8, 3, 3), (1, 8, 1, 1)),
                                                  ((1, 8, 1, 1), (4, 8, 3, 3)), ((4, 8, 3, 3), ())])
def test_max_gradient_is_torch_maximums_bit_for_bit(shape_a, shape_b, dtype, gen):
    """Ties (rounded inputs make many) split the gradient in halves, broadcast inputs get sums, in
    either dtype, whichever input needs a gradient."""
    a = torch.randn(shape_a, generator=gen).round().to(dtype)
    b = torch.randn(shape_b, generator=gen).round().to(dtype)
    assert bool((a == b).any())
    g = torch.randn(torch.broadcast_shapes(shape_a, shape_b), generator=gen).to(dtype)
    for needs_b in (True, False):
        grads = []
        for fn in (torch.maximum, ops.max):
            x, y = a.clone().requires_grad_(True), b.clone().requires_grad_(needs_b)
            out = fn(x, y)
            out.backward(g)
            grads.append((out, x.grad, y.grad))
        (o1, ga1, gb1), (o2, ga2, gb2) = grads
        assert torch.equal(o1, o2) and torch.equal(ga1, ga2)
        assert (gb1 is None and gb2 is None) or torch.equal(gb1, gb2)


def test_max_div_and_variance_have_exact_first_and_second_derivatives():
    """Their backward passes are their own code; the stability test differentiates twice."""
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops.max, (x, y)) and torch.autograd.gradgradcheck(ops.max, (x, y))
    assert torch.autograd.gradcheck(ops.div, (x, y)) and torch.autograd.gradgradcheck(ops.div, (x, y))
    for dims, correction in (((0, 2, 3), 0), ((2, 3), 1), ((1, 2, 3), 0)):
        def var(a, dims=dims, correction=correction):
            return stats.TwoPassVariance.apply(a, dims, correction)
        assert torch.autograd.gradcheck(var, (x,)) and torch.autograd.gradgradcheck(var, (x,))
        torch.testing.assert_close(var(x), torch.var(x, dim=dims, keepdim=True, correction=correction))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("shape_a", "shape_b"), [((4, 8, 3, 3), (4, 8, 3, 3)), ((4, 8, 3, 3), (1, 8, 1, 1)),
                                                  ((1, 8, 1, 1), (4, 8, 3, 3))])
def test_div_is_the_where_guard_bit_for_bit(shape_a, shape_b, dtype, gen):
    """Values everywhere (±0, tiny, guard-sized, infinite and NaN divisors) and gradients wherever
    finite equal those of a / where(|b| < GUARD_EPS, ±GUARD_EPS, b), NaNs in the same places."""
    def reference(a, b):
        eps = ops.GUARD_EPS
        return a / torch.where(b.abs() < eps, torch.where(b < 0, -eps, eps).to(b.dtype), b)

    edge = [0.0, -0.0, 1e-7, -1e-7, 1e-6, -1e-6, 2e-6, 1.0, -3.0, float("inf"), -float("inf"), float("nan")]
    a = torch.randn(shape_a, generator=gen).to(dtype)
    b = torch.randn(shape_b, generator=gen)
    k = min(len(edge), b.numel())
    b.view(-1)[:k] = torch.tensor(edge[:k])
    b = b.to(dtype)
    g = torch.randn(torch.broadcast_shapes(shape_a, shape_b), generator=gen).to(dtype)
    for needs_b in (True, False):
        results = []
        for fn in (reference, ops.div):
            x, y = a.clone().requires_grad_(True), b.clone().requires_grad_(needs_b)
            out = fn(x, y)
            out.backward(g)
            results.append((out, x.grad, y.grad))
        for p, q in zip(*results, strict=True):
            if p is None:
                assert q is None
                continue
            finite = torch.isfinite(p) & torch.isfinite(q)
            assert torch.equal(p[finite], q[finite]) and torch.equal(p.isnan(), q.isnan())
