"""Genome -> a self-contained PyTorch source file with one ``nn.Module`` (no import of evonorm).

The forward pass is written one statement per live node, from each op's ``code`` template in the
op table; the functions those statements call (the guarded ``div``, ``log``, ``sqrt`` and the
float32 statistics, with the variance's autograd function) and the constants they read are copied
verbatim from ``gp/ops.py``, ``gp/stats.py`` and ``gp/compiler.py``, so the exported layer computes what
:func:`gp.compile_layer` computes, operation for operation. Batch aggregates keep running estimates
exactly as :class:`gp.GenomeLayer` does, under the same buffer names, so a compiled layer's
``state_dict`` loads into the exported module and back.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import sys
import textwrap
import types
from collections.abc import Callable

from gp import compiler, ops, stats
from gp.genome import NUM_INPUTS, Genome
from gp.printing import formula

_CLASS_SOURCES = (stats, compiler)
"""Modules whose globals the generated class may name (``EPS``, ``variance``, ``MOMENTUM``...)."""

_BATCH_METHOD = {
    # statistic: the training-mode lines of the method, mirroring GenomeLayer._batch_stat
    "mean": ("out = observed = mean(a, \"batch\")",),
    "sqmean": ("out = observed = sqmean(a, \"batch\")",),
    "std": ("var = variance(a, \"batch\")  # float32, biased: what std_batch uses",
            "out = torch.sqrt(var + EPS).to(a.dtype)",
            "# the running estimate keeps the unbiased variance, as BatchNorm2d; n = N*H*W per channel",
            "n = a.shape[0] * a.shape[2] * a.shape[3] if a.dim() == 4 else 1",
            "observed = var * (n / (n - 1)) if n > 1 else var"),
}

_EVAL_LINE = {
    "mean": "return running.reshape(1, -1, 1, 1).to(a.dtype)",
    "sqmean": "return running.reshape(1, -1, 1, 1).to(a.dtype)",
    "std": "return torch.sqrt(running + EPS).reshape(1, -1, 1, 1).to(a.dtype)",
}


def default_class_name(genome: Genome) -> str:
    """The zoo name in CamelCase (``EvonormS0``) for a known layer, else ``EvolvedNormAct``."""
    from gp import zoo

    for name in zoo.names():
        if zoo.get(name).key == genome.key:
            return "".join(part.capitalize() for part in name.split("_"))
    return "EvolvedNormAct"


def export_source(genome: Genome, *, class_name: str | None = None) -> str:
    """Python source of a standalone ``nn.Module`` computing ``genome`` then the per-channel affine.

    The module has the norm-act constructor contract ``(num_features, *, apply_act=True,
    device=None, dtype=None)``; ``apply_act=False`` gives the affine alone (the policy of the
    official EvoNorm code where a network normalises without an activation).
    """
    g = genome.canonical
    class_name = class_name or default_class_name(g)
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise ValueError(f"class name {class_name!r} is not a Python identifier")
    forward, helpers, batch_stats = _forward_lines(g)
    methods = [_batch_method(s) for s in ("mean", "sqmean", "std") if s in batch_stats]
    klass = _class_source(g, class_name, forward, methods)
    constants, functions, names = _dependencies(helpers, klass)
    if class_name in names | {"torch", "nn"}:
        raise ValueError(f"class name {class_name!r} would hide a name the file uses; avoid {', '.join(sorted(names))}")
    header = "from __future__ import annotations\n\nimport torch\nfrom torch import nn"
    parts = [_module_docstring(g, class_name), header]
    if constants or functions:
        parts.append("# -- copied verbatim from evonorm's gp/stats.py, gp/ops.py and gp/compiler.py --\n\n"
                     + "\n".join(constants))
    parts += functions + [f"# -- the layer --\n\n\n{klass}"]
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


# -- the forward pass ----------------------------------------------------------------------


def _forward_lines(g: Genome) -> tuple[list[str], list[Callable], set[str]]:
    """Statements of the graph part of ``forward``, the helper functions they call, and the batch
    statistics that need a method of their own."""
    names = {0: "x", 1: "zero", 2: "v0", 3: "v1"}
    used_inputs = {i for n in g.nodes for i in n.inputs if i < NUM_INPUTS}
    lines = []
    if 1 in used_inputs:
        lines.append("zero = x.new_zeros(())")
    for i, param in ((2, "v0"), (3, "v1")):
        if i in used_inputs:
            lines.append(f"{param} = self.{param}.to(x.dtype)")
    helpers: list[Callable] = []
    batch_stats: set[str] = set()
    for k, node in enumerate(g.nodes):
        index = NUM_INPUTS + k
        names[index] = f"t{k + 1}"
        op = ops.OPS[node.op]
        args = [names[a] for a in node.inputs]
        if op.uses_batch:
            batch_stats.add(op.statistic)
            expr = f"self._batch_{op.statistic}({args[0]}, self.running_t{k + 1})"
        else:
            expr = op.code.format(*args)
            helpers += [h for h in op.helpers if h not in helpers]
        lines.append(f"{names[index]} = {expr}  # {op.name}")
    lines.append(f"y = {names[g.output]}.to(x.dtype)")
    return lines, helpers, batch_stats


def _batch_method(statistic: str) -> str:
    body = "\n".join(_BATCH_METHOD[statistic])
    return (f"def _batch_{statistic}(self, a: torch.Tensor, running: torch.Tensor) -> torch.Tensor:\n"
            f'    """{statistic}_batch: the batch\'s value in training (updating the running estimate with\n'
            f'    momentum MOMENTUM, as BatchNorm2d), the running estimate in eval mode."""\n'
            f"    if not self.training:\n"
            f"        {_EVAL_LINE[statistic]}\n"
            f"{textwrap.indent(body, '    ')}\n"
            f"    with torch.no_grad():\n"
            f"        running.lerp_(observed.detach().float().reshape(-1).expand(self.num_features), MOMENTUM)\n"
            f"    return out\n")


def _class_source(g: Genome, class_name: str, forward: list[str], methods: list[str]) -> str:
    buffers = []
    for k, node in enumerate(g.nodes):
        op = ops.OPS[node.op]
        if op.uses_batch:
            init = "zeros" if op.statistic == "mean" else "ones"  # mean 0, var 1, E[x^2] 1
            buffers.append(f'self.register_buffer("running_t{k + 1}", '
                           f"torch.{init}(num_features, device=device, dtype=torch.float32))  # {op.name}")
    init_body = [
        "super().__init__()",
        "if num_features < 1:",
        '    raise ValueError(f"num_features must be positive, got {num_features}")',
        "self.num_features = num_features",
        "self.apply_act = apply_act",
        "shape = (1, num_features, 1, 1)",
        "self.gamma = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))",
        "self.beta = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))",
        "if apply_act:",
        "    self.v0 = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))",
        "    self.v1 = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))",
        *("    " + b for b in buffers),
    ]
    forward_body = [
        "if x.dim() != 4 or x.shape[1] != self.num_features:",
        '    raise ValueError(f"expected input (N, {self.num_features}, H, W), got {tuple(x.shape)}")',
        "if not self.apply_act:  # a norm with no activation after it: the affine alone",
        "    return x * self.gamma.to(x.dtype) + self.beta.to(x.dtype)",
        *forward,
        "return torch.addcmul(self.beta.to(x.dtype), y, self.gamma.to(x.dtype)).expand_as(x)",
    ]
    doc = (f"{formula(g)}, then y * gamma + beta per channel.\n\n"
           "``apply_act=False`` (a position where the network normalises without an activation) gives\n"
           "``x * gamma + beta`` alone.")
    parts = [
        f"class {class_name}(nn.Module):",
        textwrap.indent(f'"""{doc}"""', "    "),
        "",
        "    def __init__(self, num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> None:",
        textwrap.indent("\n".join(init_body), " " * 8),
        "",
        "    def extra_repr(self) -> str:",
        '        return f"{self.num_features}, apply_act={self.apply_act}"',
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H, W)",
        textwrap.indent("\n".join(forward_body), " " * 8),
    ]
    for m in methods:
        parts += ["", textwrap.indent(m, "    ").rstrip("\n")]
    return "\n".join(parts) + "\n"


def _module_docstring(g: Genome, class_name: str) -> str:
    batch = ("It uses batch statistics: in training mode the current batch's, updating a running estimate\n"
             f"(momentum {compiler.MOMENTUM}; std_batch keeps the unbiased variance, as BatchNorm2d); in eval\n"
             "mode the running estimates, so call .eval() for inference.\n" if g.uses_batch else
             "It uses no batch statistics: training and eval mode compute the same function.\n")
    return (f'"""{class_name}: a normalization-activation layer, exported by evonorm.\n\n'
            f"    {formula(g)}\n\n"
            "then a per-channel affine y * gamma + beta (gamma = 1, beta = 0 at init); v0 and v1 are\n"
            "trainable per-channel vectors (initialised to 0 and 1). Statistics are computed in float32\n"
            "whatever the input dtype: mean_I, sqmean_I = mean of squares, std_I = sqrt(biased variance +\n"
            "EPS) over I = batch (n, h, w), layer (c, h, w), instance (h, w) or group (c/g, h, w), with g the\n"
            "largest divisor of C not above GROUPS. div, log and sqrt are guarded by GUARD_EPS.\n"
            f"{batch}\n"
            f"Genome: {g}\n"
            f"Key:    {g.key}\n\n"
            "Requires only PyTorch. Constructor: (num_features, *, apply_act=True, device=None, dtype=None).\n"
            '"""')


# -- copying the helpers' definitions --------------------------------------------------------


def _dependencies(helpers: list[Callable], klass: str) -> tuple[list[str], list[str], set[str]]:
    """Source of the constants and functions (classes too) that ``helpers`` and the class need, each copied from
    the module that defines it, and their names; names resolve in the module of the code that
    uses them."""
    constants: dict[str, str] = {}
    functions: dict[str, str] = {}
    origin: dict[str, types.ModuleType] = {}
    queue: list[tuple[str, types.ModuleType]] = []
    for name in _free_names(klass):
        module = next((m for m in _CLASS_SOURCES if _defines(m, name)), None)
        if module is not None:
            queue.append((name, module))
    queue += [(h.__name__, sys.modules[h.__module__]) for h in helpers]
    while queue:
        name, module = queue.pop(0)
        if name in origin:
            if origin[name] is not module and getattr(origin[name], name) is not getattr(module, name):
                raise AssertionError(f"{name} is defined differently in {origin[name].__name__} and {module.__name__}")
            continue
        origin[name] = module
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            source = inspect.getsource(value)
            functions[name] = source
            queue += [(n, module) for n in _free_names(source) if _defines(module, n)]
        else:
            constants[name] = _assignment_source(module, name)
    order = {m: k for k, m in enumerate(_CLASS_SOURCES + (ops,))}
    in_source_order = sorted(functions, key=lambda n: (order.get(origin[n], len(order)),
                                                      inspect.getsourcelines(getattr(origin[n], n))[1]))
    return sorted(constants.values(), key=str.lower), [functions[n] for n in in_source_order], set(origin)


def _defines(module: types.ModuleType, name: str) -> bool:
    """True for a function or class defined in ``module`` or a module-level constant of it."""
    value = getattr(module, name, None)
    if inspect.isfunction(value) or inspect.isclass(value):
        return value.__module__ == module.__name__
    return isinstance(value, int | float | str | tuple | dict) and not name.startswith("__") and \
        _assignment_source(module, name, required=False) is not None


def _free_names(source: str) -> list[str]:
    """Names read in ``source``, in order of first appearance."""
    seen: dict[str, None] = {}
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            seen.setdefault(node.id)
    return list(seen)


def _assignment_source(module: types.ModuleType, name: str, *, required: bool = True) -> str | None:
    """``NAME = value`` as written in ``module``, with the string that documents it, if any."""
    source = inspect.getsource(module)
    body = ast.parse(source).body
    for k, stmt in enumerate(body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) \
            else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            text = ast.get_source_segment(source, stmt)
            nxt = body[k + 1] if k + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                text += "\n" + ast.get_source_segment(source, nxt)
            return text
    if required:
        raise AssertionError(f"no assignment of {name} in {module.__name__}")
    return None
