import copy
import pickle
import re

import numpy as np
import pytest
import torch

from gp import Genome, compile_layer, compiler, ops, random_genome, zoo
from gp.compiler import use_compiled
from gp.genome import NUM_INPUTS
from gp.interpreter import InterpretedLayer


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


@pytest.mark.parametrize("name", zoo.names())
def test_layer_moved_to_bfloat16_trains_and_updates_its_running_statistics(name):
    # a whole model .to(torch.bfloat16) makes the running buffers bfloat16 too (found on a GPU run)
    layer = compile_layer(zoo.get(name), 8).to(torch.bfloat16).train()
    before = [b.clone() for b in layer.buffers()]
    out = layer(torch.randn(4, 8, 5, 5, dtype=torch.bfloat16) * 2 + 1)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert all(b.dtype == torch.bfloat16 for b in layer.buffers())
    assert all(not torch.equal(a, b) for a, b in zip(before, layer.buffers(), strict=True))


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


# -- the generated layer against the op-by-op interpreter it replaces ----------------------------


def _pair(genome, channels, gen):
    """The generated and the interpreted layer of ``genome``, with the same moved parameters."""
    new, old = compile_layer(genome, channels), InterpretedLayer(genome, channels)
    with torch.no_grad():
        for name in ("v0", "v1", "gamma", "beta"):
            value = torch.randn(1, channels, 1, 1, generator=gen) * 0.5 + (1.0 if name in ("v1", "gamma") else 0.0)
            getattr(new, name).copy_(value)
            getattr(old, name).copy_(value)
    return new, old


def _same(a, b, dtype):
    tol = {"rtol": 0, "atol": 0} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(a, b, equal_nan=True, **tol)


@pytest.mark.parametrize("name", zoo.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_generated_layer_matches_interpreter(name, dtype, channels_last, gen):
    """Outputs, gradients and running estimates over three training steps, then eval mode."""
    new, old = _pair(zoo.get(name), 64, gen)
    for step in range(4):
        x = (torch.randn(8, 64, 5, 5, generator=gen) * 2 + 1).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        training = step < 3
        outs = []
        for layer in (new, old):
            layer.train(training).zero_grad()
            xin = x.clone().requires_grad_(True)
            out = layer(xin)
            out.float().square().mean().backward()
            outs.append((out, xin.grad, [p.grad for p in layer.parameters()]))
        (a, ga, pa), (b, gb, pb) = outs
        assert a.dtype == dtype
        _same(a, b, dtype)
        _same(ga, gb, dtype)
        for p, q in zip(pa, pb, strict=True):
            assert (p is None) == (q is None)
            if p is not None:
                _same(p, q, dtype)
    for (n, r), (m, s) in zip(new.named_buffers(), old.named_buffers(), strict=True):
        assert n == m
        _same(r, s, torch.float32)


def test_random_genomes_match_interpreter(gen):
    """Constants, guards, every op and index set: 300 random graphs of the paper's space, in
    training and eval mode, bit for bit in float32."""
    rng = np.random.default_rng(0)
    x = torch.randn(4, 64, 3, 3, generator=gen) * 2 + 0.5
    for _ in range(300):
        genome = random_genome(rng)
        new, old = _pair(genome, 64, gen)
        with torch.no_grad():
            for training in (True, False):
                _same(new.train(training)(x), old.train(training)(x), torch.float32)


def test_constants_are_folded_and_made_once(gen):
    genome = Genome.from_expression("add(max(x, exp(zero)), sigmoid(zero))")  # max(x, 1) + 0.5
    layer = compile_layer(genome, 4)
    assert layer._program.constants == (1.0, 0.5)
    assert "gp_ops_exp" not in layer.code and "gp_ops_sigmoid" not in layer.code
    x = torch.randn(2, 4, 3, 3, generator=gen)
    torch.testing.assert_close(layer(x), torch.clamp_min(x, 1) + 0.5)
    assert layer._program.tensors(x) is layer._program.tensors(x)  # no allocation per forward


def test_one_statement_per_live_node_and_one_program_per_genome():
    genome = zoo.get("evonorm_s0")
    a, b = compile_layer(genome, 8), compile_layer(genome, 16)
    assert a._program is b._program
    assert copy.deepcopy(a)._program is a._program
    statements = [line for line in a.code.splitlines() if re.match(r"\s*t\d+ = ", line)]
    assert len(statements) == len(genome.canonical.nodes)


@pytest.mark.parametrize(("expr", "guarded"), [
    ("div(add(x, neg(mean_batch(x))), std_batch(x))", False),  # BN's division
    ("div(x, max(std_batch(x), add(mul(v1, x), std_instance(x))))", False),  # B0's
    ("div(x, add(abs(x), std_group(x)))", False),
    ("div(x, mean_layer(std_instance(x)))", False),
    ("div(x, sigmoid(x))", True),  # sigmoid underflows to 0
    ("div(x, mul(std_batch(x), std_layer(x)))", False),  # at least EPS = 1e-5, 10x the guard's 1e-6
    ("div(x, mul(std_batch(x), sigmoid(x)))", True),
    ("div(x, add(v1, std_batch(x)))", True),  # v1 is trainable, of any sign
    ("div(x, sqmean_layer(x))", True),
])
def test_division_by_a_provably_large_divisor_is_unguarded(expr, guarded, gen):
    """Only divisors whose bound follows from their ops lose the guard, and the value and the
    gradient stay those of the guarded division, bit for bit."""
    genome = Genome.from_expression(expr)
    code = compile_layer(genome, 8).code
    assert ("gp_ops_div" in code) == guarded
    new, old = _pair(genome, 8, gen)
    x = torch.randn(4, 8, 3, 3, generator=gen) * 3
    grads = []
    for layer in (new, old):
        xin = x.clone().requires_grad_(True)
        out = layer(xin)
        out.square().sum().backward()
        grads.append((out, xin.grad))
    _same(grads[0][0], grads[1][0], torch.float32)
    _same(grads[0][1], grads[1][1], torch.float32)


def test_bounds_hold_on_random_graphs(gen):
    """Every bound :func:`gp.compiler._floors` claims holds on the node's actual values, for 300
    random graphs of the paper's space, in float32 and bfloat16."""
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        genome = random_genome(rng)
        floors = compiler._floors(genome, compiler._fold(genome))
        for dtype in (torch.float32, torch.bfloat16):
            x = (torch.randn(4, 8, 3, 3, generator=gen) * 3).to(dtype)
            values = {0: x, 1: torch.zeros((), dtype=dtype), 2: torch.zeros(1, 8, 1, 1, dtype=dtype),
                      3: torch.ones(1, 8, 1, 1, dtype=dtype)}
            for k, node in enumerate(genome.nodes):
                index = NUM_INPUTS + k
                with torch.no_grad():
                    values[index] = ops.OPS[node.op].fn(*(values[i] for i in node.inputs))
                if index in floors:
                    v = values[index].float()
                    floor = floors[index] - abs(floors[index]) * 1e-2  # bfloat16 rounds by 0.4% at most
                    assert bool((v[~v.isnan()] >= floor).all()), (genome, index, floors[index])
                    checked += 1
    assert checked > 300


def test_eval_mode_skips_nodes_only_batch_aggregates_read():
    genome = Genome.from_expression("div(x, std_batch(exp(x)))")
    layer = compile_layer(genome, 4)
    assert "gp_ops_exp" in layer.train().code and "gp_ops_exp" not in layer.eval().code


def test_pickles_and_loads_state_of_the_interpreted_layer(gen):
    new, old = _pair(zoo.get("evonorm_b0"), 8, gen)
    old.train()(torch.randn(4, 8, 3, 3, generator=gen))
    new.load_state_dict(old.state_dict())
    again = pickle.loads(pickle.dumps(new))
    x = torch.randn(4, 8, 3, 3, generator=gen)
    torch.testing.assert_close(again.eval()(x), old.eval()(x), rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bn_relu", "evonorm_b0", "evonorm_s0"])
def test_torch_compile_of_generated_layer_matches_eager(name, gen):
    layer = compile_layer(zoo.get(name), 32).train()
    compiled = torch.compile(layer)
    x = torch.randn(4, 32, 6, 6, generator=gen) * 2 + 1
    eager = copy.deepcopy(layer)
    torch.testing.assert_close(compiled(x), eager(x), rtol=1e-4, atol=1e-4)
    for (_, r), (_, s) in zip(layer.named_buffers(), eager.named_buffers(), strict=True):
        torch.testing.assert_close(r, s, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_one_compiled_program_serves_layers_of_every_width(gen):
    """The generated code takes tensors, not the module: one torch.compile per genome and mode."""
    program = compile_layer(zoo.get("evonorm_b0"), 8)._program
    compiled = torch.compile(program.train.forward, dynamic=True)
    for c in (8, 24, 40):
        layer = compile_layer(zoo.get("evonorm_b0"), c).train()
        eager = copy.deepcopy(layer)
        x = torch.randn(4, c, 5, 5, generator=gen) * 2 + 1
        out = compiled(x, layer.v0, layer.v1, layer.gamma, layer.beta, layer.running_t1, ())
        torch.testing.assert_close(out, eager(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(layer.running_t1, eager.running_t1, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_equal_sizes_at_the_first_site_do_not_pin_the_compiled_code(gen):
    """A first site with C = H = W (16) must not specialise the compiled layer to equal sizes
    (duck sizing): a later site with other sizes reuses the same compiled graph."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    for c, hw in ((16, 16), (32, 8)):
        layer = compile_layer(zoo.get("bn_relu"), c).train()
        use_compiled(torch.nn.Sequential(layer), shapes="dynamic")
        eager = copy.deepcopy(layer)
        eager.compiled = False
        x = torch.randn(2, c, hw, hw, generator=gen)
        torch.testing.assert_close(layer(x), eager(x), rtol=1e-4, atol=1e-4)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["evonorm_b0", "evonorm_s0"])
def test_one_graph_per_resolution_serves_every_batch_size_and_width(name, gen):
    """The default shape policy: batch size and channels dynamic, height and width static. Sites
    of one resolution share a compiled graph whatever their width, batch or group count (S0: 24,
    32 and 24 groups); a new resolution compiles one more; outputs and running estimates match
    the eager code."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    graphs = []
    for n, c, hw in ((32, 48, 16), (24, 96, 16), (32, 144, 16), (32, 40, 8)):
        layer = compile_layer(zoo.get(name), c).train()
        use_compiled(torch.nn.Sequential(layer))
        eager = copy.deepcopy(layer)
        eager.compiled = False
        x = torch.randn(n, c, hw, hw, generator=gen) * 2 + 1
        torch.testing.assert_close(layer(x), eager(x), rtol=1e-4, atol=1e-4)
        for (_, r), (_, e) in zip(layer.named_buffers(), eager.named_buffers(), strict=True):
            torch.testing.assert_close(r, e, rtol=1e-5, atol=1e-6)
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs == [1, 1, 1, 2], graphs


def test_unknown_shape_policy_is_refused():
    layer = compile_layer(zoo.get("bn_relu"), 4)
    with pytest.raises(ValueError, match="'static-ish'.*per-resolution"):
        use_compiled(torch.nn.Sequential(layer), shapes="static-ish")
    with pytest.raises(ValueError, match="'static-ish'"):
        layer._program.compiled(True, "static-ish")


def test_failed_compilation_falls_back_to_eager_code(gen):
    from torch._dynamo.exc import TorchDynamoException

    genome = Genome.from_expression("div(tanh(x), std_layer(square(x)))")  # a program no other test compiles
    layer = compile_layer(genome, 4).train()
    x = torch.randn(2, 4, 3, 3, generator=gen)
    expected = layer(x)

    def broken(*args):
        raise TorchDynamoException("no compiler here")

    for shapes in compiler.SHAPE_POLICIES:
        layer._program._compiled[(True, shapes)] = broken
    assert use_compiled(torch.nn.Sequential(layer)) == 1
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        torch.testing.assert_close(layer(x), expected)
    assert "no compiler here" in layer._program.compile_error
    torch.testing.assert_close(layer(x), expected)  # eager from now on, without a new warning


def test_compiled_layers_validate_with_eager_code_when_told(gen, monkeypatch):
    genome = Genome.from_expression("div(x, std_batch(x))")
    layer = compile_layer(genome, 4)
    x = torch.randn(2, 4, 3, 3, generator=gen)
    calls = []

    def recorded(training):
        def run(*args):
            calls.append(training)
            return (layer._program.train if training else layer._program.eval).forward(*args)
        return run

    layer._program._compiled = {(t, compiler.SHAPES): recorded(t) for t in (True, False)}
    use_compiled(torch.nn.Sequential(layer))
    monkeypatch.setattr(compiler, "COMPILE_EVAL", False)
    layer.train()(x)
    layer.eval()(x)
    assert calls == [True]  # the eval pass ran the eager code
    monkeypatch.setattr(compiler, "COMPILE_EVAL", True)
    layer.eval()(x)
    assert calls == [True, False]


@pytest.mark.parametrize("expr", ["exp(zero)", "std_batch(zero)", "add(x, mean_batch(sigmoid(zero)))",
                                  "div(x, neg(zero))", "max(mean_instance(zero), x)"])
def test_constant_corner_cases_match_interpreter(expr, gen):
    """Constant outputs, batch aggregates of constants (they keep running estimates) and guards
    on folded constants."""
    new, old = _pair(Genome.from_expression(expr), 8, gen)
    for training in (True, True, False):
        x = torch.randn(4, 8, 3, 3, generator=gen)
        _same(new.train(training)(x), old.train(training)(x), torch.float32)
    for (_, r), (_, s) in zip(new.named_buffers(), old.named_buffers(), strict=True):
        _same(r, s, torch.float32)
