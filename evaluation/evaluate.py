"""Scoring a candidate as the paper does, cheapest first across all anchors:

1. the static probe (once, before any network is built);
2. the stability test on every anchor;
3. the first ``quality_step`` training steps on every anchor, with the quality, loss and step-time
   checks, so a layer rejected there costs at most K x ``quality_step`` steps. The anchors train
   in the listed order, or with ``rejection.anchor_order = "fail-first"`` in the order that
   minimises the expected cost of this stage, from what this evaluator has seen so far (see
   :func:`fail_first`): an anchor that rejects often and trains cheaply goes first. Each anchor's
   training keeps its own random state, so the order changes no score and no verdict but the wall
   clock's (``rejection.max_seconds``): only which anchor a layer rejected by several is recorded
   against, and the time it took;
4. only then the rest of the training on each anchor, resumed from where step 3 left it (same
   model, optimiser, schedule, batch order and random state: a passing layer's scores are those of
   one uninterrupted training per anchor).

Seconds per stage go into :attr:`EvalResult.timings`: ``static``, ``build``, ``stability``,
``quality_phase`` and ``rest_phase`` (steps 3 and 4, validation included), and within those
``training`` and ``validation``; ``compile`` when ``train.compile`` asks for compiled candidates
(:data:`COMPILE_POLICIES`). Nothing a candidate does escapes: a rejection or any unexpected
error becomes the status of its :class:`EvalResult`.

``rejection.max_seconds`` bounds a candidate's whole evaluation (every anchor, every stage): past
it the candidate is rejected at stage ``budget``, checked after the static probe, after each
anchor's stability test, after every training step and at every validation (:class:`WallClock`).
The process and Ray executors also stop a worker that overruns it by a grace period without
reaching one of those points (:mod:`evaluation.executors`).

The step-time budget compares like with like: the candidate against BN-ReLU (BN-Swish for
EfficientNet) written as a genome and run through the same compiler, with the same no-activation
policy, not against the fused native ``BatchNorm2d``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import architectures
from evaluation import data as datamod
from evaluation.config import ConfigError, EvalConfig, validate
from evaluation.hooks import (
    CandidateRejected,
    Hook,
    Stopwatch,
    TrialContext,
    default_hooks,
    is_out_of_memory,
    static_check,
)
from evaluation.result import EvalResult, Status
from evaluation.train import Progress, Training, autocast, build_model, time_steps
from gp import Genome, compiler, layer_factory, zoo
from gp.compiler import use_compiled

COMPILE_POLICIES = ("off", "survivors", "always")
"""When the candidate layer runs ``torch.compile``'d: never; for the rest of the training of a layer
that passed the quality stage (compilation costs seconds; it pays for long trainings only); or
from the first training step (never during the stability test, which differentiates twice)."""

_REFERENCE_LAYERS = {architectures.bn_relu: "bn_relu", architectures.bn_silu: "bn_silu"}
"""The zoo genome of each network's own norm-act (what a candidate replaces)."""


def reference_genome(arch: str) -> Genome:
    """BN-ReLU, or BN-Swish for EfficientNet, as a genome: the step-time budget's yardstick."""
    return zoo.get(_REFERENCE_LAYERS[architectures.reference_norm_act(arch)])


class WallClock(Hook):
    """Rejects a candidate at stage ``budget`` once its evaluation has run ``seconds`` (wall clock,
    from the start of the evaluation); the reason says where it stopped."""

    stage = "budget"

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.start = clock()

    def check(self, where: str) -> None:
        elapsed = self.clock() - self.start
        if elapsed > self.seconds:
            raise CandidateRejected(f"wall-clock limit of {self.seconds:g} s reached ({elapsed:.1f} s, {where})",
                                    self.stage)

    def before_training(self, ctx: TrialContext) -> None:  # runs after the other hooks': stability
        self.check(f"after the stability test on {ctx.anchor}")

    def after_step(self, ctx: TrialContext, step: int, loss: float) -> None:
        self.check(f"at step {step} on {ctx.anchor}")

    def at_evaluation(self, ctx: TrialContext, step: int, accuracy: float) -> None:
        self.check(f"at the validation of step {step} on {ctx.anchor}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def check_config(config: EvalConfig) -> None:
    """Errors a user can make in a config, found before any data is loaded."""
    seen = set()
    for a in config.anchors:
        architectures.default_width(a.arch)  # raises KeyError naming the valid architectures
        if a.arch in seen:
            raise ConfigError(f"anchor {a.arch!r} is listed twice")
        seen.add(a.arch)
        if a.width <= 0:
            raise ConfigError(f"anchor {a.arch!r}: width must be positive, got {a.width}")
    if config.train.steps < 1:
        raise ConfigError(f"train.steps must be at least 1, got {config.train.steps}")
    if config.train.no_act not in ("affine", "candidate", "batchnorm"):
        raise ConfigError(f"train.no_act must be affine, candidate or batchnorm, got {config.train.no_act!r}")
    if config.train.compile not in COMPILE_POLICIES:
        raise ConfigError(f"train.compile must be {', '.join(COMPILE_POLICIES)}, got {config.train.compile!r}")
    validate(config)  # types and ranges of every other key


def load_data(config: EvalConfig, device: torch.device, *, test: bool = False) -> datamod.DeviceData:
    """The training split of the configured source, cut into train / validation, on ``device``.

    ``test=True`` (re-ranking only, when asked) trains on the whole training split and scores on
    the test split instead; the search itself never reads the test split.
    """
    d = config.data

    def read(name: str, **kwargs) -> datamod.Split:
        split, _ = datamod.load_split(d.source, name, **kwargs)
        return split if d.resolution is None else datamod.downsample(split, d.resolution)

    split = read("train", per_class=d.per_class)
    if test:
        return datamod.DeviceData(split, read("test"), device, d.val_batch)
    train, val = datamod.holdout(split, d.val_size, d.split_seed)
    return datamod.DeviceData(train, val, device, d.val_batch)


@dataclass
class AnchorRecord:
    """One anchor's quality stages in an evaluator: how many ran to a verdict, how many rejected
    the candidate, and the seconds they took."""

    attempts: int = 0
    rejections: int = 0
    seconds: float = 0.0

    def add(self, rejected: bool, seconds: float) -> None:
        self.attempts += 1
        self.rejections += rejected
        self.seconds += seconds


def fail_first(records: Sequence[AnchorRecord]) -> list[int]:
    """The order of anchor indices that minimises the expected cost of a quality stage, taking
    the anchors' verdicts as independent (Smith's rule for sequential tests): ascending mean
    seconds over rejection probability, the probability estimated as (rejections + 1) /
    (attempts + 2). Anchors with no verdict yet come last, as listed: with no record at all this
    is the listed order."""

    def key(i: int) -> tuple[int, float]:
        r = records[i]
        if not r.attempts:
            return 1, i
        return 0, (r.seconds / r.attempts) * (r.attempts + 2) / (r.rejections + 1)

    return sorted(range(len(records)), key=key)


class Evaluator:
    """Evaluates candidates under one config; keeps the data on the device and BN-ReLU's step
    times between candidates, so a worker pays for them once, and each anchor's quality verdicts,
    which order the anchors of the next candidates' quality stage (:func:`fail_first`)."""

    def __init__(self, config: EvalConfig, *, hooks: list[Hook] | None = None, progress: Progress | None = None,
                 data: datamod.DeviceData | None = None) -> None:
        check_config(config)
        self.config = config
        self.device = resolve_device(config.device)
        self.hooks = hooks if hooks is not None else default_hooks(config.rejection)
        self.progress = progress
        self._data = data
        self._baseline: dict[str, float] = {}
        self.quality = [AnchorRecord() for _ in config.anchors]  # per anchor: its quality stages so far

    def quality_order(self) -> list[int]:
        """Anchor indices in the order the quality stage trains them (``rejection.anchor_order``)."""
        if self.config.rejection.anchor_order == "config":
            return list(range(len(self.quality)))
        return fail_first(self.quality)

    @property
    def data(self) -> datamod.DeviceData:
        if self._data is None:
            self._data = load_data(self.config, self.device)
        return self._data

    def baseline_step(self, index: int) -> float | None:
        """Median seconds per step on anchor ``index`` of BN-ReLU (BN-Swish) in the candidates'
        form: its genome through the same compiler, eager or compiled as candidates are at the
        quality stage, with the same no-activation policy. Measured once."""
        rej, anchor = self.config.rejection, self.config.anchors[index]
        if rej.max_step_ratio <= 0:
            return None
        if anchor.arch not in self._baseline:
            factory = layer_factory(reference_genome(anchor.arch), no_act=self.config.train.no_act)
            model = build_model(anchor, factory, self.device, self.config.seed)
            # the budget is checked in the quality stage: compiled there only under "always"
            use_compiled(model, self.config.train.compile == "always", shapes=self.config.train.compile_shapes)
            self._baseline[anchor.arch] = time_steps(model, self.data, self.config.train, rej.timing_steps,
                                                     self.config.seed)
        return self._baseline[anchor.arch]

    def __call__(self, genome: Genome) -> EvalResult:
        clock = Stopwatch()
        base = {"genome": str(genome.canonical), "key": genome.key}
        state = {"anchor": None, "step": 0}
        accuracies: dict[str, float] = {}
        curves: dict[str, dict[int, float]] = {}
        params: dict[str, int] = {}
        limit = self.config.rejection.max_seconds
        wall = WallClock(limit) if limit > 0 else None
        try:
            self._evaluate(genome, clock, state, accuracies, curves, params, wall)
            status, reason, stage = Status.OK, None, None
        except CandidateRejected as r:
            status, reason, stage = Status.REJECTED, r.reason, r.stage
        except datamod.DataError as exc:  # the machine's fault, not the layer's: never a verdict on it
            status, reason, stage = Status.FAILED, f"DataError: {exc}", "data"
        except Exception as exc:  # noqa: BLE001 - a candidate must never take the caller down
            if is_out_of_memory(exc):
                status, reason, stage = Status.REJECTED, "out of memory", "budget"
            else:
                status, reason, stage = Status.FAILED, f"{type(exc).__name__}: {str(exc)[:300]}", "error"
        finally:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        if status is not Status.OK:
            accuracies = {}
        return EvalResult(**base, status=status, accuracies=accuracies, reason=reason, stage=stage,
                          anchor=state["anchor"] if status is not Status.OK else None, step=state["step"],
                          timings={k: round(v, 4) for k, v in clock.seconds.items()}, params=params, curves=curves)

    def _evaluate(self, genome, clock, state, accuracies, curves, params, wall: WallClock | None) -> None:
        cfg = self.config
        hooks = self.hooks if wall is None else [*self.hooks, wall]
        with clock("static"):
            static_check(genome)
        if wall is not None:
            wall.check("after the static probe")
        factory = layer_factory(genome, no_act=cfg.train.no_act)
        q = cfg.rejection.quality_step
        eval_at = set(cfg.train.eval_at) | {cfg.train.steps} | ({q} if q <= cfg.train.steps else set())
        n = cfg.rejection.stability_batch
        fixed = (self.data.augmenter.normalize(self.data.train.images[:n]), self.data.train.labels[:n])
        runs: list[Training] = []
        for index, anchor in enumerate(cfg.anchors):  # stability on every anchor
            state["anchor"], state["step"] = anchor.arch, 0
            started = wall.clock() if wall is not None else 0.0
            baseline = self.baseline_step(index)
            if wall is not None:  # BN-ReLU's step time, measured once per worker, is not the candidate's
                wall.start += wall.clock() - started
            with clock("build"):
                model = build_model(anchor, factory, self.device, cfg.seed + index)
            params[anchor.arch] = sum(p.numel() for p in model.parameters())
            ctx = TrialContext(genome, anchor.arch, model, self.device, fixed, baseline_step=baseline)
            with clock("stability"):
                for hook in hooks:
                    hook.before_training(ctx)
            runs.append(Training(ctx, self.data, cfg.train, eval_at=eval_at, val_limit=cfg.data.val_limit,
                                 hooks=hooks, seed=cfg.seed, clock=clock, progress=self.progress))
        for phase, until in (("quality_phase", q), ("rest_phase", cfg.train.steps)):
            if cfg.train.compile == {"quality_phase": "always", "rest_phase": "survivors"}[phase]:
                self._compile(runs, clock)
            # every anchor to the quality step, then every anchor to the end
            for index in self.quality_order() if phase == "quality_phase" else range(len(runs)):
                run = runs[index]
                if run.step >= min(until, cfg.train.steps):
                    continue
                state["anchor"] = run.ctx.anchor
                started, verdict = time.perf_counter(), None
                try:
                    with clock(phase):
                        run.advance(until)
                    verdict = False
                except CandidateRejected as r:
                    verdict = r.stage != "budget" or None  # the wall clock's verdict is not the anchor's
                    raise
                finally:
                    state["step"] = run.step
                    if phase == "quality_phase" and verdict is not None:
                        self.quality[index].add(verdict, time.perf_counter() - started)
        for run in runs:
            curves[run.ctx.anchor] = run.curve
            accuracies[run.ctx.anchor] = run.curve[cfg.train.steps]

    def _compile(self, runs: list[Training], clock: Stopwatch) -> None:
        """Switch every anchor's candidate layers to compiled code and compile it now, as its own
        ``compile`` stage: one training pass on a copy of each model (the copy shares the compiled
        code; the model itself is untouched), and one validation pass unless ``COMPILE_EVAL`` is off.
        The passes take a training batch and a validation batch of the sizes training and
        validation use: Inductor's kernels guard on the batch size (below 17 images, say), and a
        smaller warm-up batch would compile graphs that training never runs."""
        if all(run.step >= self.config.train.steps for run in runs):
            return
        n = min(self.config.train.batch_size, len(self.data.train))
        images, labels = self.data.augmenter.normalize(self.data.train.images[:n]), self.data.train.labels[:n]
        val_images = next(self.data.val_batches(self.data.val_batch), (None,))[0] if compiler.COMPILE_EVAL else None
        with clock("compile"):
            for run in runs:
                use_compiled(run.ctx.model, shapes=self.config.train.compile_shapes)
                run.recapture()
                copy = deepcopy(run.ctx.model).train()
                with autocast(self.device):
                    loss = F.cross_entropy(copy(images).float(), labels)
                loss.backward()
                if val_images is not None:
                    with torch.no_grad(), autocast(self.device):
                        copy.eval()(val_images)
                del copy


def evaluate(genome: Genome, config: EvalConfig, **kwargs) -> EvalResult:
    """Evaluate one candidate (loads the data; use :class:`Evaluator` for many)."""
    return Evaluator(config, **kwargs)(genome)
