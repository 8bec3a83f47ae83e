"""Genome -> ``torch.nn.Module``, by generating straight-line code.

A genome becomes a :class:`torch.fx.GraphModule`: one statement per live node, each a call of the
op table's own function (``gp.ops``), so printing, interpretation and code share one definition
of every op and its guard. The generated code, printed by :attr:`GenomeLayer.code`, reads
(BN-ReLU)::

    def forward(self, x, v0, v1, gamma, beta, running_t1, running_t4, constants):
        dtype = x.dtype
        t1 = gp_compiler_batch_statistic(x, running_t1, 'mean')
        t2 = gp_ops_neg(t1)
        t3 = gp_ops_add(x, t2)
        t4 = gp_compiler_batch_statistic(x, running_t4, 'std')
        t5 = gp_ops_div(t3, t4)
        c1 = constants[0]
        t6 = gp_ops_max(t5, c1)
        return torch.addcmul(beta.to(dtype), t6, gamma.to(dtype)).expand_as(x)

It takes tensors only (input, parameters, running estimates, constants and, for group statistics,
an empty tensor whose length is the group count), never the module, so one ``torch.compile`` of a
genome's code serves every site of every network: by default batch size, channel count and group
count are dynamic sizes and height and width static, which compiles one graph per resolution
(:data:`SHAPES`).

What generation removes, against walking the graph op by op:

- constant folding: a node that reads only constants (``exp(0)``, ``sigmoid(0)``...) is
  computed once, when the layer is built, in float32;
- no allocation per forward: each constant operand is a 0-d tensor created once per device and
  dtype and shared by every layer of the genome; the parameters are cast only where the input's
  dtype differs from theirs (mixed precision), and only those the genome reads;
- in eval mode, nodes read only by batch aggregates are not computed: those aggregates read
  their running estimates;
- no guard where it cannot act: a ``div`` whose divisor is provably at least
  :data:`UNGUARDED_FLOOR` (a ``std_*``, or ``max`` of one, as in BN-ReLU and EvoNorm-B0) is a plain
  division, the same value and gradient bit for bit;
- one graph per genome and mode, built once and shared by every layer of that genome (a network
  has dozens of sites), and a plain graph for ``torch.compile`` to fuse: no Python loop or
  per-node dispatch for Dynamo to trace through.

Numerics are those of the op table: every node computes what :class:`gp.interpreter.
InterpretedLayer` (the former op-by-op layer) computes, on the same dtypes, with statistics in
float32; ``tests/gp/test_compiler.py`` checks the two against each other on random genomes.

Batch aggregates behave like BatchNorm: in training they use the statistic of the current batch
and update a running estimate (momentum 0.1; ``std_batch`` keeps the unbiased running variance,
as ``BatchNorm2d`` does); in eval mode they read the running estimate. Every other statistic is
computed from its own input in both modes.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from functools import lru_cache

import torch
from torch import fx, nn

from gp import ops, stats
from gp.genome import NUM_INPUTS, Genome

MOMENTUM = 0.1

NormAct = Callable[..., nn.Module]
"""A norm-act factory: ``(num_features, *, apply_act=True, device=None, dtype=None) -> Module``."""

NO_ACT_POLICIES = ("affine", "candidate", "batchnorm")

COMPILE_EVAL = True
"""Whether compiled layers also run compiled in eval mode (validation). ``False`` validates with
the eager generated code and saves the second compilation per candidate; which is faster depends
on how many validation passes a training has (``benchmarks/candidates_per_hour.py`` compares
both: forms ``always`` and ``always-eval``)."""

SHAPES = "per-resolution"
"""How compiled layers treat tensor sizes (:data:`SHAPE_POLICIES`).

- ``"per-resolution"`` (default): batch size and channel count are dynamic, height and width
  static. One compiled graph per input resolution and mode (a CIFAR anchor has 4 or 5), shared by
  every width and every anchor.
- ``"dynamic"``: every size dynamic; one graph serves every site.

Measured on this 2-core CPU (one thread, EvoNorm-B0 forward and backward, ``docs/results.md``
§5e): the fully dynamic kernels run at 3.0-5.4x native BatchNorm+ReLU, the per-resolution ones
at 0.75-1.4x. The fully dynamic graph compiles fewer times."""

SHAPE_POLICIES = ("per-resolution", "dynamic")


def _check_shapes(shapes: str) -> None:
    if shapes not in SHAPE_POLICIES:
        raise ValueError(f"unknown shape policy {shapes!r}; valid: {', '.join(SHAPE_POLICIES)}")


PARAMETERS = ("v0", "v1", "gamma", "beta")
"""The per-channel parameters of every genome layer, in the order the generated code takes them."""

_BATCH_VALUE = {"mean": stats.mean, "sqmean": stats.sqmean}
_STATISTIC = {"mean": stats.mean, "sqmean": stats.sqmean, "std": stats.std}


# -- the helpers that generated code calls for batch and group aggregates ----------------------


def batch_statistic(a: torch.Tensor, running: torch.Tensor, statistic: str) -> torch.Tensor:
    """Training mode: the batch's statistic of ``a``; updates ``running`` in place, as BatchNorm2d."""
    if statistic == "std":
        var = stats.variance(a, "batch")  # float32, biased: what std_batch uses
        out = torch.sqrt(var + stats.EPS).to(a.dtype)
        # the running estimate keeps the unbiased variance, as BatchNorm2d; n = N*H*W per channel
        n = a.shape[0] * a.shape[2] * a.shape[3] if a.dim() == 4 else 1
        observed = var * (n / (n - 1)) if n > 1 else var
    else:
        out = observed = _BATCH_VALUE[statistic](a, "batch")
    with torch.no_grad():
        # in the buffer's own dtype: float32 normally, bfloat16 after a whole-model .to(torch.bfloat16)
        running.lerp_(observed.detach().to(running.dtype).reshape(-1).expand(running.shape[0]), MOMENTUM)
    return out


def group_statistic(a: torch.Tensor, groups: torch.Tensor, statistic: str) -> torch.Tensor:
    """A statistic over channel groups, the group count read from ``groups.shape[0]`` (an empty
    tensor the layer passes): compiled code then treats it as a size, instead of branching on the
    channel count in :func:`gp.stats.group_count` and compiling once per channel-count class."""
    # a node may not span the channels (a constant broadcast later): its own count, 1, applies
    spans = a.dim() == 4 and a.shape[1] != 1
    return _STATISTIC[statistic](a, "group", groups=groups.shape[0] if spans else None)


def running_statistic(running: torch.Tensor, statistic: str, dtype: torch.dtype) -> torch.Tensor:
    """Eval mode: the running estimate, shaped (1, C, 1, 1), in the input's dtype."""
    r = running if statistic != "std" else torch.sqrt(running + stats.EPS)
    return r.reshape(1, -1, 1, 1).to(dtype)


# -- code generation -----------------------------------------------------------------------


def _running_name(k: int) -> str:
    return f"running_t{k + 1}"


def _fold(genome: Genome) -> dict[int, float]:
    """Values of the nodes that read only constants (never batch aggregates: those keep a running
    estimate, which differs from the batch value in eval mode), computed in float32."""
    known = {1: 0.0}  # the constant input
    with torch.no_grad():
        for k, node in enumerate(genome.nodes):
            op = ops.OPS[node.op]
            if not op.uses_batch and all(i in known for i in node.inputs):
                args = [torch.tensor(known[i], dtype=torch.float32) for i in node.inputs]
                known[NUM_INPUTS + k] = float(op.fn(*args).reshape(()))
    return known


_NONNEGATIVE = frozenset({"abs", "square", "exp", "sigmoid"})
"""Element-wise ops whose value is never negative (``exp`` and ``sigmoid`` may underflow to 0)."""

UNGUARDED_FLOOR = 10 * ops.GUARD_EPS
"""A divisor proven at least this large everywhere is divided by directly: ``div``'s guard would
return it unchanged, so skipping the guard changes no bit of the value or the gradient (the margin
covers rounding in bfloat16)."""


def _floors(genome: Genome, folded: dict[int, float]) -> dict[int, float]:
    """A lower bound of each node's value that follows from its ops alone, where one does.

    ``std_*`` is at least sqrt(EPS) (batch or running variance, never negative); ``max`` is at least
    its larger known bound; ``add`` and ``mul`` of two bounded non-negative values, ``mean_*`` of a
    bounded value keep a bound; ``abs``, ``square``, ``exp``, ``sigmoid`` and ``sqmean_*`` are at
    least 0; a folded constant is its value. Rounding is left to :data:`UNGUARDED_FLOOR`'s margin."""
    floor = dict(folded)
    for k, node in enumerate(genome.nodes):
        index = NUM_INPUTS + k
        if index in floor:
            continue
        op = ops.OPS[node.op]
        known = [floor.get(i) for i in node.inputs]
        found = None
        if op.statistic == "std":
            found = stats.EPS ** 0.5
        elif op.statistic == "sqmean" or op.name in _NONNEGATIVE:
            found = 0.0
        elif op.statistic == "mean":
            found = known[0]
        elif op.name == "max" and any(f is not None for f in known):
            found = max(f for f in known if f is not None)
        elif op.name in ("add", "mul") and all(f is not None and f >= 0 for f in known):
            found = max(known) if op.name == "add" else known[0] * known[1]
        if found is not None:
            floor[index] = found
    return floor


class Program:
    """The generated code of one genome: a training-mode and an eval-mode graph, built once and
    shared by every layer of that genome. The code never changes (only caches fill: constant
    tensors per device and dtype, compiled functions), so copies of a layer share it too."""

    def __init__(self, genome: Genome) -> None:
        self.genome = genome
        folded = _fold(genome)
        # constants read by a computed node, or the output itself: one slot each
        read = {i for k, n in enumerate(genome.nodes) if NUM_INPUTS + k not in folded for i in n.inputs}
        self.slots = {i: s for s, i in enumerate(sorted(i for i in folded if i in read or i == genome.output))}
        self.constants: tuple[float, ...] = tuple(folded[i] for i in self.slots)
        self.buffers: tuple[tuple[str, str], ...] = tuple(
            (_running_name(k), ops.OPS[n.op].statistic) for k, n in enumerate(genome.nodes)
            if ops.OPS[n.op].uses_batch)
        self.grouped = any(ops.OPS[n.op].index_set == "group" for n in genome.nodes)
        floors = _floors(genome, folded)
        # divisions whose divisor is provably >= UNGUARDED_FLOOR (BN-ReLU's and B0's): no guard
        self.unguarded = frozenset(NUM_INPUTS + k for k, n in enumerate(genome.nodes)
                                   if n.op == "div" and floors.get(n.inputs[1], -1.0) >= UNGUARDED_FLOOR)
        self.train = _generate(genome, set(folded), self.slots, self.grouped, self.unguarded, training=True)
        self.eval = _generate(genome, set(folded), self.slots, self.grouped, self.unguarded, training=False)
        self._tensors: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}
        self._groups: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._compiled: dict[tuple[bool, str], Callable[..., torch.Tensor]] = {}
        self.compile_error: str | None = None  # set when compilation failed: eager from then on

    def compiled(self, training: bool, shapes: str) -> Callable[..., torch.Tensor]:
        """``torch.compile`` of the code of one mode, made on first use (compilation itself happens at
        the first call). ``shapes`` is one of :data:`SHAPE_POLICIES`; with ``"per-resolution"`` the
        caller marks the dynamic sizes (:func:`mark_dynamic_sizes`)."""
        _check_shapes(shapes)
        fn = self._compiled.get((training, shapes))
        if fn is None:
            code = self.train if training else self.eval
            if shapes == "dynamic":
                fn = torch.compile(code.forward, dynamic=True)
                patch = {}
            else:  # static but for the sizes marked dynamic at each call; never widened by Dynamo
                fn = torch.compile(code.forward, dynamic=None)
                patch = {"automatic_dynamic_shapes": False, "recompile_limit": RECOMPILE_LIMIT}
            # parameters are static-shaped by default, which pins C and recompiles per width; duck
            # sizing assumes sizes equal at the first call stay equal (C = H at one site, say) and
            # recompiles at the next site where they differ (12 s on a CPU, measured)
            fn = torch._dynamo.config.patch(force_parameter_static_shapes=False, **patch)(fn)
            fn = torch.fx.experimental._config.patch(use_duck_shape=False)(fn)
            self._compiled[(training, shapes)] = fn
        return fn

    def compile_failed(self, exc: Exception) -> None:
        self.compile_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        warnings.warn(f"torch.compile failed for {self.genome}; running it eagerly: {self.compile_error}",
                      RuntimeWarning, stacklevel=3)

    def tensors(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The constants as 0-d tensors on ``x``'s device and in its dtype, made once."""
        if not self.constants:
            return ()
        key = (x.device, x.dtype)
        found = self._tensors.get(key)
        if found is None:
            found = tuple(torch.tensor(c, dtype=x.dtype, device=x.device) for c in self.constants)
            self._tensors[key] = found
        return found

    def groups(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The ``groups`` argument of group aggregates: an empty tensor of shape (G, 0) for ``x``'s
        channel count, made once per count and device; ``()`` when the genome has none."""
        if not self.grouped:
            return ()
        key = (x.shape[1], x.device)
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = torch.empty(stats.group_count(x.shape[1]), 0, device=x.device)
        return (found,)

    def __deepcopy__(self, memo) -> Program:
        return self

    def __reduce__(self):
        return program, (self.genome,)


RECOMPILE_LIMIT = 16
"""Compiled graphs kept per genome and mode under ``"per-resolution"`` (Dynamo's default is 8): a
resolution, and Inductor's own guards on the batch size (its accumulator helper splits at 16 and
at 4,096 elements), each add one. Past the limit a call runs the eager code, correctly."""


def mark_dynamic_sizes(args: tuple[torch.Tensor, ...], n_buffers: int) -> None:
    """Mark the batch and channel sizes of a generated layer's tensor arguments dynamic for this
    call (``x``: dims 0 and 1; the per-channel parameters ``(1, C, 1, 1)``: dim 1; the running
    estimates ``(C,)`` and the group count ``(G, 0)``: dim 0); height and width stay static."""
    mark = torch._dynamo.maybe_mark_dynamic
    x, params, buffers = args[0], args[1:1 + len(PARAMETERS)], args[1 + len(PARAMETERS):1 + len(PARAMETERS) + n_buffers]
    mark(x, 0)
    mark(x, 1)
    for t in params:
        mark(t, 1)
    for t in buffers:
        mark(t, 0)
    for t in args[2 + len(PARAMETERS) + n_buffers:]:  # the group count, if any (after the constants)
        mark(t, 0)


@lru_cache(maxsize=1024)
def program(genome: Genome) -> Program:
    """The generated code of a canonical genome, cached: every site of every anchor shares it."""
    return Program(genome)


def _generate(genome: Genome, folded: set[int], slots: dict[int, int], grouped: bool, unguarded: frozenset[int], *,
              training: bool) -> fx.GraphModule:
    """One graph: a statement per node not ``folded``; the folded values it reads come from
    ``slots`` of its ``constants`` argument; a last argument ``groups`` when ``grouped`` (the
    genome has group statistics); the ``div`` nodes in ``unguarded`` as a plain division; then
    the affine."""
    graph = fx.Graph()
    x = graph.placeholder("x")
    params = {name: graph.placeholder(name) for name in PARAMETERS}
    running = {k: graph.placeholder(_running_name(k)) for k, n in enumerate(genome.nodes) if ops.OPS[n.op].uses_batch}
    consts = graph.placeholder("constants")
    groups = graph.placeholder("groups") if grouped else None
    dtype = graph.create_node("call_function", getattr, (x, "dtype"), name="dtype")
    values: dict[int, fx.Node] = {0: x}

    def value(i: int) -> fx.Node:
        if i not in values:
            if i in slots:
                values[i] = graph.create_node("call_function", operator.getitem, (consts, slots[i]), name=f"c{i}")
            else:  # a trainable vector, in the input's dtype (a no-op unless precisions are mixed)
                name = ops.INPUTS[i]
                values[i] = graph.create_node("call_method", "to", (params[name], dtype), name=f"{name}_")
        return values[i]

    for k, node in enumerate(genome.nodes):
        index = NUM_INPUTS + k
        if index in folded:
            continue
        op = ops.OPS[node.op]
        name = f"t{k + 1}"
        if op.uses_batch and training:
            args = (value(node.inputs[0]), running[k], op.statistic)
            values[index] = graph.create_node("call_function", batch_statistic, args, name=name)
        elif op.uses_batch:
            args = (running[k], op.statistic, dtype)
            values[index] = graph.create_node("call_function", running_statistic, args, name=name)
        elif op.index_set == "group":
            args = (value(node.inputs[0]), groups, op.statistic)
            values[index] = graph.create_node("call_function", group_statistic, args, name=name)
        else:
            fn = operator.truediv if index in unguarded else op.fn
            values[index] = graph.create_node("call_function", fn, tuple(value(i) for i in node.inputs), name=name)
    gamma = graph.call_method("to", (params["gamma"], dtype))
    beta = graph.call_method("to", (params["beta"], dtype))
    y = graph.call_function(torch.addcmul, (beta, value(genome.output), gamma))
    graph.output(graph.call_method("expand_as", (y, x)))
    graph.eliminate_dead_code()  # in eval mode: nodes only batch aggregates read
    graph.lint()
    return fx.GraphModule(nn.Module(), graph, class_name="GeneratedLayer")


# -- the layer -----------------------------------------------------------------------------


def init_parameters(layer: nn.Module, genome: Genome, num_features: int, *, device=None, dtype=None) -> None:
    """What every form of a genome layer holds: its canonical genome (dead nodes removed), the
    trainable vectors ``v0`` (0) and ``v1`` (1), and the affine ``gamma`` (1), ``beta`` (0)."""
    if num_features < 1:
        raise ValueError(f"num_features must be positive, got {num_features}")
    factory = {"device": device, "dtype": dtype}
    layer.genome = genome.canonical
    layer.num_features = num_features
    shape = (1, num_features, 1, 1)
    layer.v0 = nn.Parameter(torch.zeros(shape, **factory))
    layer.v1 = nn.Parameter(torch.ones(shape, **factory))
    layer.gamma = nn.Parameter(torch.ones(shape, **factory))
    layer.beta = nn.Parameter(torch.zeros(shape, **factory))


class GenomeLayer(nn.Module):
    """A normalization-activation layer computed by a genome's graph, then a per-channel affine."""

    def __init__(self, genome: Genome, num_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        init_parameters(self, genome, num_features, device=device, dtype=dtype)
        self._program = program(self.genome)
        self.compiled = False  # True: run the torch.compile'd code (see use_compiled)
        self.shapes: str | None = None  # the compiled code's shape policy; None: SHAPES
        # one running estimate per batch aggregate, named after its node: mean 0, var 1, E[x^2] 1
        for name, statistic in self._program.buffers:
            init = torch.zeros if statistic == "mean" else torch.ones
            self.register_buffer(name, init(num_features, device=device, dtype=torch.float32))

    def extra_repr(self) -> str:
        return f"{self.num_features}, genome='{self.genome}'"

    @property
    def code(self) -> str:
        """The generated Python source of the current mode's forward pass."""
        return (self._program.train if self.training else self._program.eval).code

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, H, W)
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected input (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        p = self._program
        args = (x, self.v0, self.v1, self.gamma, self.beta, *(self._buffers[n] for n, _ in p.buffers), p.tensors(x),
                *p.groups(x))
        if self.compiled and (self.training or COMPILE_EVAL) and p.compile_error is None:
            shapes = self.shapes or SHAPES
            try:
                if shapes == "per-resolution":
                    mark_dynamic_sizes(args, len(p.buffers))
                return p.compiled(self.training, shapes)(*args)
            except torch._dynamo.exc.TorchDynamoException as exc:  # compilation, not the candidate, failed
                p.compile_failed(exc)
        return (p.train if self.training else p.eval).forward(*args)


def compile_layer(genome: Genome, num_features: int, *, device=None, dtype=None) -> GenomeLayer:
    """The genome as a module with parameters v0, v1, gamma, beta (and running estimates)."""
    return GenomeLayer(genome, num_features, device=device, dtype=dtype)


def use_compiled(model: nn.Module, on: bool = True, *, shapes: str | None = None) -> int:
    """Run every genome layer of ``model`` through ``torch.compile`` in training mode (or back to
    eager code); returns how many layers were switched. Eval mode (validation) runs compiled
    too unless :data:`COMPILE_EVAL` is off. ``shapes`` is a policy of :data:`SHAPE_POLICIES`
    (default: :data:`SHAPES` at each call). Compiled code cannot be differentiated twice (the
    stability test's double backward): switch after it. A compilation that fails falls back to
    eager code, with a warning, for that genome."""
    if shapes is not None:
        _check_shapes(shapes)
    layers = [m for m in model.modules() if isinstance(m, GenomeLayer)]
    for m in layers:
        m.compiled = on
        m.shapes = shapes
    return len(layers)


class Affine(nn.Module):
    """Per-channel ``x * gamma + beta``: the official EvoNorm code's layer where a network
    normalises without an activation (e.g. MobileNet's linear bottlenecks)."""

    def __init__(self, num_features: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1, device=device, dtype=dtype))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.to(x.dtype) + self.beta.to(x.dtype)


def layer_factory(genome: Genome, *, no_act: str = "affine") -> NormAct:
    """A norm-act factory for networks: ``factory(num_features, *, apply_act=True, device, dtype)``.

    ``apply_act=True`` gives the compiled candidate (it replaces a BN-ReLU pair). Positions that
    normalise without an activation follow ``no_act``: ``"affine"`` (default, as the official
    EvoNorm code), ``"candidate"`` (the candidate there too) or ``"batchnorm"``.
    """
    if no_act not in NO_ACT_POLICIES:
        raise ValueError(f"unknown no-activation policy {no_act!r}; valid: {', '.join(NO_ACT_POLICIES)}")

    def factory(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> nn.Module:
        if apply_act or no_act == "candidate":
            return GenomeLayer(genome, num_features, device=device, dtype=dtype)
        if no_act == "affine":
            return Affine(num_features, device=device, dtype=dtype)
        return nn.BatchNorm2d(num_features, device=device, dtype=dtype)

    factory.genome = genome  # type: ignore[attr-defined]  - lets a network report what it holds
    return factory
