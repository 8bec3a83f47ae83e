import ast
import importlib.util
import subprocess
import sys
import textwrap

import pytest
import torch

from gp import Genome, compile_layer, export_source, ops, zoo


def load(source: str, tmp_path, name: str = "layer"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"exported_{name}_{abs(hash(source))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def genome_for(op: ops.Op) -> Genome:
    """A small graph that uses ``op`` on x (and a per-channel vector), then a batch statistic."""
    arg = "div(x, v1)" if op.arity == 1 else "x, add(v1, x)"
    return Genome.from_expression(f"add({op.name}({arg}), mean_batch(x))")


CASES = {f"op:{name}": genome_for(op) for name, op in ops.OPS.items()} | {name: zoo.get(name) for name in zoo.names()}
CASES |= {  # statistics of per-channel vectors and of the constant; an output that ignores x
    "stat of v0, v1": Genome.from_expression("add(mul(x, v0), div(std_batch(v1), mean_group(v1)))"),
    "stat of zero": Genome.from_expression("add(x, add(sqmean_batch(zero), std_layer(zero)))"),
    "constant output": Genome.from_expression("neg(v1)"),
}


def exported_class(source: str, tmp_path):
    module = load(source, tmp_path)
    return next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                and v.__module__ == module.__name__)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_equals_compiled_in_train_and_eval(case, dtype, tmp_path):
    genome, channels = CASES[case], 12  # 12 channels: the group rule picks g = 12, not 32
    torch.manual_seed(0)
    compiled = compile_layer(genome, channels)
    with torch.no_grad():
        for p in compiled.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    exported = exported_class(export_source(genome), tmp_path)(channels)
    exported.load_state_dict(compiled.state_dict())
    x = (torch.randn(6, channels, 5, 5, generator=torch.Generator().manual_seed(1)) * 2 + 0.5).to(dtype)
    for step in range(3):  # training steps move the running estimates
        xa = (x * (1 + step)).requires_grad_()
        xb = (x * (1 + step)).requires_grad_()
        a, b = compiled.train()(xa), exported.train()(xb)
        assert a.dtype == b.dtype == dtype
        torch.testing.assert_close(b, a, rtol=0, atol=0, equal_nan=True)
        a.float().square().mean().backward()
        b.float().square().mean().backward()
        torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=0, equal_nan=True)
    for name, buf in compiled.named_buffers():
        torch.testing.assert_close(getattr(exported, name), buf, rtol=0, atol=0)
    for name, p in compiled.named_parameters():
        q = getattr(exported, name)
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(exported.eval()(x), compiled.eval()(x), rtol=0, atol=0, equal_nan=True)


def test_exported_state_dict_matches_compiled_names(tmp_path):
    g = zoo.get("evonorm_b0")
    exported = exported_class(export_source(g), tmp_path)(8)
    assert exported.state_dict().keys() == compile_layer(g, 8).state_dict().keys()


def test_constructor_contract_and_affine_only_without_activation(tmp_path):
    cls = exported_class(export_source(zoo.get("evonorm_s0")), tmp_path)
    assert cls.__name__ == "EvonormS0"
    layer = cls(16, apply_act=False, device="cpu", dtype=torch.float64)
    assert sorted(n for n, _ in layer.named_parameters()) == ["beta", "gamma"]
    with torch.no_grad():
        layer.gamma.fill_(2.0)
        layer.beta.fill_(1.0)
    x = torch.randn(2, 16, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), 2 * x + 1)
    with pytest.raises(ValueError, match=r"expected input \(N, 16, H, W\)"):
        cls(16)(torch.randn(2, 8, 3, 3))


def test_docstring_states_the_formula_and_class_name_is_configurable(tmp_path):
    g = Genome.from_expression("div(x, std_layer(x))")
    source = export_source(g, class_name="MyNorm")
    cls = exported_class(source, tmp_path)
    assert cls.__name__ == "MyNorm"
    assert "x / std_layer(x)" in cls.__doc__ and "x / std_layer(x)" in ast.get_docstring(ast.parse(source))
    for bad in ("my norm", "class"):
        with pytest.raises(ValueError, match="not a Python identifier"):
            export_source(g, class_name=bad)
    with pytest.raises(ValueError, match="would hide a name"):
        export_source(g, class_name="div")


@pytest.mark.parametrize("name", ["evonorm_b0", "evonorm_s0", "bn_relu"])
def test_file_imports_only_torch(name):
    tree = ast.parse(export_source(zoo.get(name)))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "torch"}


def test_file_runs_in_a_process_where_evonorm_cannot_be_imported(tmp_path):
    (tmp_path / "s0.py").write_text(export_source(zoo.get("evonorm_s0")))
    script = textwrap.dedent("""
        import sys
        class Block:  # any import of evonorm's packages fails
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("gp", "evaluation", "architectures", "analysis", "evonorm_cli"):
                    raise ImportError("evonorm import: " + name)
        sys.meta_path.insert(0, Block())
        import torch
        from s0 import EvonormS0
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), EvonormS0(8), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        loss = net(torch.randn(4, 3, 8, 8)).square().mean()
        loss.backward()
        opt.step()
        print("ok", sorted(m for m in sys.modules if m.split(".")[0] in ("gp", "evaluation")))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok []"


def test_torch_compile_traces_the_whole_layer_without_graph_breaks(tmp_path):
    cls = exported_class(export_source(zoo.get("evonorm_b0")), tmp_path)
    layer = cls(8)
    ref = cls(8)
    x = torch.randn(4, 8, 5, 5)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), ref(x))
    torch.testing.assert_close(layer.running_t1, ref.running_t1)  # the running estimate updated in place


@pytest.mark.slow
@pytest.mark.parametrize("name", ["evonorm_b0", "evonorm_s0"])
def test_torch_compile_inductor_matches_eager(name, tmp_path):
    cls = exported_class(export_source(zoo.get(name)), tmp_path)
    layer, ref = cls(16), cls(16)
    x = torch.randn(8, 16, 6, 6, requires_grad=True)
    out = torch.compile(layer, fullgraph=True)(x)
    torch.testing.assert_close(out, ref(x), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    layer.eval(), ref.eval()
    torch.testing.assert_close(torch.compile(layer)(x), ref(x), rtol=1e-4, atol=1e-5)


def test_cli_writes_the_file(tmp_path, capsys):
    import evonorm_cli

    out = tmp_path / "s0.py"
    assert evonorm_cli.main(["export", "evonorm_s0", "--out", str(out)]) == 0
    assert out.read_text() == export_source(zoo.get("evonorm_s0"))
    assert evonorm_cli.main(["export", "div(x, std_layer(x))", "--class-name", "LayerStd"]) == 0
    assert "class LayerStd(nn.Module):" in capsys.readouterr().out


def test_run_rank_picks_the_ranked_layer_of_a_tracked_search(monkeypatch):
    from evaluation import layers, tracking
    from gp.search.record import Record

    history = [Record(0, "t1 = std_layer(x); t2 = div(x, t1)", "a", "ok", (0.5, 0.3)),
               Record(1, "t1 = std_group(x); t2 = div(x, t1)", "b", "ok", (0.6, 0.4)),
               Record(2, "t1 = exp(x)", "c", "rejected", None),
               Record(3, "t1 = std_group(x); t2 = div(x, t1)", "b", "duplicate", (0.6, 0.4), duplicate_of=1)]

    class FakeTracker:
        def __init__(self, uri, experiment):
            pass

        def resolve(self, run):
            return "f" * 32 if run == "latest" else run

        def history(self, run_id):
            return history

    monkeypatch.setattr(tracking, "Tracker", FakeTracker)
    assert layers.resolve("latest:1")[1] == Genome.parse(history[1].genome)
    label, genome = layers.resolve("0123456789abcdef0123456789abcdef:2")
    assert label == "01234567-2" and genome == Genome.parse(history[0].genome)
    with pytest.raises(ValueError, match=r"rank must be in 1..2"):
        layers.resolve("latest:3")
    # an open tracker is read through, without a second client (rerank passes its own)
    given = FakeTracker(None, None)
    monkeypatch.setattr(tracking, "Tracker", lambda *a: pytest.fail("opened a second tracking client"))
    assert layers.resolve("latest:1", tracker=given)[1] == Genome.parse(history[1].genome)
