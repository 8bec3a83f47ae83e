"""Transfer: found layers inside torchvision classification networks, trained from scratch beside
BN-ReLU and GN-ReLU, several seeds each (the paper's evidence that a layer is worth keeping).

Which positions are replaced: the network is built as torchvision builds it, traced with
``torch.fx`` (every module without children is a leaf, so stochastic depth and dropout keep their
own train/eval logic), and each ``BatchNorm2d`` is replaced where it stands:

- a BatchNorm2d whose only user is an activation (ReLU, ReLU6, SiLU, Hardswish, GELU, ... as a
  module or a function): the pair becomes one ``layer(num_features)`` (``apply_act=True``), and the
  activation is removed, whatever it was (MobileNetV3's Hardswish, EfficientNet's SiLU too);
- any other BatchNorm2d (the last norm of a residual branch, before the addition; projection
  shortcuts; MobileNet's linear bottlenecks): ``layer(num_features, apply_act=False)``, which is
  the per-channel affine for a candidate under the default ``no_act="affine"`` policy (the
  official EvoNorm code's), BatchNorm2d for the BN-ReLU reference and GroupNorm for GN-ReLU;
- an activation that does not follow a norm (ResNet's ReLU after the residual addition, the
  activations inside squeeze-excitation blocks) is kept.

Small images (<= 64 px, CIFAR): the first strided convolution gets stride 1 and a ``maxpool``
stem (ResNets) is removed, so a 32x32 image still has 4x4 pixels at a ResNet's last stage (the
paper's anchors are adapted the same way). Networks whose forward branches on ``self.training``
outside a leaf module would be traced in training mode only; torchvision's classifiers above do not.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from evaluation.config import DataConfig, EvalConfig, TrainConfig
from evaluation.data import DeviceData
from evaluation.evaluate import load_data, resolve_device
from evaluation.hooks import CandidateRejected, FiniteLoss, Stopwatch, TrialContext
from evaluation.train import Progress, train
from gp import Genome, formula, layer_factory, stats, zoo

REFERENCES = ("bn_relu", "gn_relu")
"""Layers trained beside the candidates, as native PyTorch modules."""

ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish, nn.ELU, nn.LeakyReLU, nn.PReLU)
ACTIVATION_FUNCTIONS = (F.relu, torch.relu, F.relu6, F.silu, F.hardswish, F.gelu, F.mish, F.elu, F.leaky_relu)
ACTIVATION_METHODS = ("relu", "relu_")


@dataclass(frozen=True)
class TransferConfig:
    model: str = "resnet18"  # a torchvision classification model with BatchNorm2d
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # train.no_act: policy where no activation follows
    seeds: int = 3  # seeds per layer (model initialisation and batch order)
    split: str = "val"  # val: a held-out part of the training split; test: train on all of it, score on test
    small_input_stem: str = "auto"  # auto (images <= 64 px) | on | off
    references: tuple[str, ...] = REFERENCES
    device: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class Row:
    """One layer's results over the seeds."""

    label: str
    genome: str
    native: bool  # a reference trained as native PyTorch modules
    accuracies: tuple[float, ...]  # per seed; NaN where training diverged
    params: int
    step_seconds: float  # median over every step of every seed
    replaced: int  # norm-activation pairs replaced
    failures: tuple[str, ...] = ()

    @property
    def trained(self) -> list[float]:
        """Accuracies of the seeds that trained (a diverged seed is NaN, its reason in ``failures``)."""
        return [a for a in self.accuracies if math.isfinite(a)]

    @property
    def mean(self) -> float:
        """Mean over the seeds that trained; NaN when none did."""
        return statistics.mean(self.trained) if self.trained else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation over the seeds that trained (0 for one; NaN for none), as
        tracking logs ``acc.sd``. (``statistics.stdev`` raises on a NaN, so diverged seeds must go.)"""
        trained = self.trained
        return statistics.stdev(trained) if len(trained) > 1 else (0.0 if trained else math.nan)


def from_eval_config(cfg: EvalConfig, *, model: str, **changes) -> TransferConfig:
    """A transfer study with a preset's data, training schedule, device and seed (its anchors and
    rejection settings do not apply); ``changes`` sets TransferConfig fields."""
    return dataclasses.replace(TransferConfig(model=model, data=cfg.data, train=cfg.train, device=cfg.device,
                                              seed=cfg.seed), **changes)


# -- norm-act factories ---------------------------------------------------------------------


def native_factory(name: str):
    """BN-ReLU or GN-ReLU as native modules, with the norm-act contract; without activation, the
    norm alone (BatchNorm2d, or GroupNorm with the group rule of ``gp.stats``)."""
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; valid: {', '.join(REFERENCES)}")

    def factory(num_features: int, *, apply_act: bool = True, device=None, dtype=None) -> nn.Module:
        if name == "bn_relu":
            norm: nn.Module = nn.BatchNorm2d(num_features, device=device, dtype=dtype)
        else:
            norm = nn.GroupNorm(stats.group_count(num_features), num_features, eps=stats.EPS, device=device,
                                dtype=dtype)
        return nn.Sequential(norm, nn.ReLU(inplace=True)) if apply_act else norm

    return factory


# -- the network ----------------------------------------------------------------------------


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return next(m.children(), None) is None or super().is_leaf_module(m, qualname)


def _is_activation(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], ACTIVATION_MODULES)
    if node.op == "call_function":
        return node.target in ACTIVATION_FUNCTIONS
    return node.op == "call_method" and node.target in ACTIVATION_METHODS


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def replace_norm_acts(model: nn.Module, factory) -> tuple[fx.GraphModule, list[str], list[str]]:
    """The model with every BatchNorm2d replaced by ``factory`` (see the module docstring);
    returns it with the paths of the replaced norm-activation pairs and of the norms alone."""
    try:
        graph = _LeafTracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - torch.fx raises many types on untraceable code
        raise ValueError(f"cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: {exc}); "
                         "transfer needs a traceable network") from None
    gm = fx.GraphModule(model, graph, type(model).__name__)
    modules = dict(gm.named_modules())
    pairs, alone = [], []
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        bn = modules[node.target]
        users = list(node.users)
        act = users[0] if len(users) == 1 and _is_activation(users[0], modules) else None
        ref = next(bn.parameters(), None)
        _set_module(gm, node.target, factory(bn.num_features, apply_act=act is not None,
                                             device=ref.device if ref is not None else None))
        if act is not None:
            act.replace_all_uses_with(node)
            gm.graph.erase_node(act)
            pairs.append(node.target)
        else:
            alone.append(node.target)
    if not pairs and not alone:
        raise ValueError(f"{type(model).__name__} has no BatchNorm2d to replace")
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm, pairs, alone


def adapt_small_input_stem(model: nn.Module) -> None:
    """Stride 1 in the first strided convolution, and no ``maxpool`` stem: for 32x32 images."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and max(m.stride) > 1:
            m.stride = (1, 1)
            break
    if isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        model.maxpool = nn.Identity()


def build_model(name: str, factory, *, num_classes: int, small_stem: bool, seed: int,
                device: torch.device) -> tuple[nn.Module, list[str], list[str]]:
    """A torchvision classifier, freshly initialised under ``seed``, with its norms replaced."""
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        known = ", ".join(torchvision.models.list_models(module=torchvision.models))
        raise ValueError(f"unknown torchvision classification model {name!r}; known: {known}")
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if small_stem:
        adapt_small_input_stem(model)
    torch.manual_seed(seed + 1)  # the new layers' own initialisation, the same for every layer
    model, pairs, alone = replace_norm_acts(model, factory)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model, pairs, alone


# -- the study --------------------------------------------------------------------------------


def _wants_small_stem(cfg: TransferConfig, data: DeviceData) -> bool:
    if cfg.small_input_stem not in ("auto", "on", "off"):
        raise ValueError(f"small_input_stem must be auto, on or off, got {cfg.small_input_stem!r}")
    return cfg.small_input_stem == "on" or (cfg.small_input_stem == "auto" and max(data.train.images.shape[2:]) <= 64)


def layers_to_train(specs: list[tuple[str, Genome]], references: tuple[str, ...]) -> list[tuple[str, Genome, bool]]:
    """(label, genome, native) for the references first, then the candidates; a reference named
    among the candidates is trained once, natively."""
    for r in references:
        if r not in REFERENCES:
            raise ValueError(f"unknown reference {r!r}; valid: {', '.join(REFERENCES)}")
    native = list(dict.fromkeys(list(references) + [label for label, _ in specs if label in REFERENCES]))
    out = [(r, zoo.get(r), True) for r in native]
    out += [(label, g, False) for label, g in specs if label not in REFERENCES]
    if not out:
        raise ValueError("no layer to train: give at least one LAYER or a reference")
    return out


def run_transfer(specs: list[tuple[str, Genome]], cfg: TransferConfig, *, progress: Progress | None = None,
                 data: DeviceData | None = None) -> list[Row]:
    """Train ``cfg.model`` with each layer (and the references), ``cfg.seeds`` seeds each."""
    if cfg.split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {cfg.split!r}")
    if cfg.seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {cfg.seeds}")
    layers = layers_to_train(specs, cfg.references)
    device = resolve_device(cfg.device)
    if data is None:
        data = load_data(EvalConfig(data=cfg.data), device, test=cfg.split == "test")
    num_classes = int(torch.cat([data.train.labels, data.val.labels]).max()) + 1
    small = _wants_small_stem(cfg, data)
    rows = []
    for label, genome, native in layers:
        factory = native_factory(label) if native else layer_factory(genome, no_act=cfg.train.no_act)
        accs, times, failures, params, pairs = [], [], [], 0, []
        for s in range(cfg.seeds):
            seed = cfg.seed + s
            model, pairs, _ = build_model(cfg.model, factory, num_classes=num_classes, small_stem=small, seed=seed,
                                          device=device)
            params = sum(p.numel() for p in model.parameters())
            ctx = TrialContext(genome, f"{cfg.model}/{label}/seed {seed}", model, device, None)  # type: ignore[arg-type]
            try:
                curve = train(ctx, data, cfg.train, eval_at={cfg.train.steps}, val_limit=cfg.data.val_limit,
                              hooks=[FiniteLoss()], seed=seed, clock=Stopwatch(), progress=progress)
                accs.append(curve[cfg.train.steps])
            except CandidateRejected as exc:  # diverged: recorded, and the study goes on
                accs.append(math.nan)
                failures.append(f"seed {seed}: {exc.reason}")
            times += ctx.step_times
        rows.append(Row(label, str(genome), native, tuple(accs), params,
                        statistics.median(times) if times else math.nan, len(pairs), tuple(failures)))
    return rows


def table(rows: list[Row], cfg: TransferConfig) -> str:
    """Mean ± sample sd over seeds, per layer, with the per-seed accuracies."""
    split = "test" if cfg.split == "test" else "validation"
    steps = f"{cfg.train.steps} step{'s' if cfg.train.steps != 1 else ''}"
    lines = [f"{cfg.model}, {steps} of batch {cfg.train.batch_size}, {cfg.seeds} seed(s), "
             f"{split} accuracy",
             f"{'layer':<16} {'accuracy':>15} {'params':>10} {'s/step':>7}  {'per seed':<24} formula"]
    for r in rows:
        seeds = " ".join(f"{a:.3f}" for a in r.accuracies)
        kind = " (native)" if r.native else ""
        lines.append(f"{r.label[:16]:<16} {r.mean:>7.3f} ± {r.sd:<5.3f} {r.params:>10} {r.step_seconds:>7.3f}  "
                     f"{seeds:<24} {formula(Genome.parse(r.genome))}{kind}")
        lines += [f"{'':<16} diverged: {f}" for f in r.failures]
    return "\n".join(lines)


def log(tracker, rows: list[Row], cfg: TransferConfig) -> str:
    """One parent run for the study and one child run per layer, the table and the replaced
    positions as artifacts; returns the parent's id."""
    import tempfile
    from pathlib import Path

    pairs, alone = positions(cfg)
    params = dataclasses.asdict(cfg) | {"replaced_pairs": len(pairs), "norm_only": len(alone)}
    run_id = tracker.start_transfer(f"transfer-{cfg.model}", params)
    for r in rows:
        tracker.log_transfer_layer(r.label, r.genome, list(r.accuracies),
                                   {"params": r.params, "seconds.step": r.step_seconds, "pairs": r.replaced},
                                   native=r.native)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "transfer.txt").write_text(table(rows, cfg) + "\n")
        (Path(tmp) / "positions.txt").write_text("replaced norm-activation pairs:\n" + "\n".join(pairs) +
                                                 "\n\nnorms without an activation after them:\n" + "\n".join(alone))
        tracker.log_artifacts(Path(tmp), run_id)
    tracker.finish()
    return run_id


def positions(cfg: TransferConfig, num_classes: int = 10, small_stem: bool = True) -> tuple[list[str], list[str]]:
    """The paths of the pairs that a layer replaces in ``cfg.model``, and of the norms alone."""
    _, pairs, alone = build_model(cfg.model, native_factory("bn_relu"), num_classes=num_classes,
                                  small_stem=small_stem, seed=0, device=torch.device("cpu"))
    return pairs, alone

