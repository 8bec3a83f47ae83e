"""Evaluation on real CIFAR-10 subsets (../shared/data/cifar10), on the CPU."""

import dataclasses

import pytest
import torch

from evaluation.config import AnchorConfig, DataConfig, EvalConfig, RejectionConfig, TrainConfig
from evaluation.evaluate import AnchorRecord, Evaluator, evaluate, fail_first
from evaluation.hooks import CandidateRejected, Hook, is_out_of_memory
from evaluation.result import EvalResult, Status
from gp import Genome, zoo


@pytest.fixture(scope="module")
def tiny(cifar_dir):
    """One small ResNet anchor on 600 images; hooks as the smoke preset."""
    cfg = EvalConfig(anchors=(AnchorConfig("resnet50", 0.0625),),
                     data=DataConfig(source=str(cifar_dir), per_class=60, val_size=100),
                     train=TrainConfig(steps=20, batch_size=16, lr=0.05),
                     rejection=RejectionConfig(stability_steps=3, stability_batch=8, quality_step=20,
                                               quality_threshold=0.0, max_step_ratio=0),
                     device="cpu")
    return cfg, Evaluator(cfg)


def _with(cfg, **changes):
    from evaluation.config import override

    return override(cfg, **changes)


@pytest.mark.parametrize("expr, stage, reason", [
    ("mean_layer(mean_batch(x))", "static", "output is constant"),
    ("add(v0, sigmoid(v1))", "static", "output does not depend on x"),
    ("exp(exp(exp(square(x))))", "static", "output not finite"),
    ("exp(x)", "stability", "gradient norm is nan"),
])
def test_bad_layers_are_rejected_before_training(tiny, expr, stage, reason):
    cfg, ev = tiny
    result = ev(Genome.from_expression(expr))
    assert result.status is Status.REJECTED and result.stage == stage and reason in result.reason
    assert result.step == 0 and result.objectives is None


def test_layer_going_non_finite_in_training_is_rejected_there(tiny):
    """Constant at init (v0 = 0) so it passes the probe and the stress test; at a high learning
    rate v0 moves and exp(v0·x²) overflows."""
    cfg, ev = tiny
    hot = Evaluator(_with(cfg, **{"train.lr": 1.0}), data=ev.data)
    result = hot(Genome.from_expression("exp(mul(v0, square(x)))"))
    assert result.status is Status.REJECTED and result.stage == "training"
    assert "loss nan" in result.reason and result.step >= 1 and result.anchor == "resnet50"


def test_quality_check_rejects_at_its_step(tiny):
    cfg, ev = tiny
    strict = Evaluator(_with(cfg, **{"rejection.quality_step": 10, "rejection.quality_threshold": 0.99}), data=ev.data)
    result = strict(zoo.get("bn_relu"))
    assert result.status is Status.REJECTED and result.stage == "quality" and result.step == 10
    assert "< 0.99 at step 10 on resnet50" in result.reason


def test_slow_step_is_rejected_against_bn_relu(tiny):
    cfg, ev = tiny
    budget = Evaluator(_with(cfg, **{"rejection.max_step_ratio": 1e-3, "rejection.timing_steps": 2}), data=ev.data)
    result = budget(zoo.get("evonorm_s0"))
    assert result.status is Status.REJECTED and result.stage == "budget" and "x BN-ReLU's" in result.reason


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried... out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_exception_inside_candidate_is_failed_and_caller_carries_on(tiny):
    cfg, ev = tiny

    class Broken(Hook):
        def after_step(self, ctx, step, loss):
            if step == 2:
                raise ZeroDivisionError("a hook's bug")

    broken = Evaluator(cfg, hooks=[Broken()], data=ev.data)
    result = broken(zoo.get("bn_relu"))
    assert result.status is Status.FAILED and result.stage == "error"
    assert result.reason == "ZeroDivisionError: a hook's bug" and result.step == 2
    assert ev(zoo.get("bn_relu")).status is Status.OK  # the next candidate is unaffected


def test_result_records_everything_and_round_trips_json(tiny):
    cfg, ev = tiny
    result = ev(zoo.get("evonorm_b0"))
    assert result.status is Status.OK and result.step == 20
    assert set(result.accuracies) == {"resnet50"} and 0 <= result.accuracies["resnet50"] <= 1
    assert result.params["resnet50"] > 0 and {"static", "stability", "training"} <= set(result.timings)
    assert result.key == zoo.get("evonorm_b0").key and result.objectives == (result.accuracies["resnet50"],)
    assert EvalResult.from_json(result.to_json()) == result


def test_same_seed_same_result(tiny):
    cfg, ev = tiny
    a, b = ev(zoo.get("evonorm_s0")), ev(zoo.get("evonorm_s0"))
    assert a.accuracies == b.accuracies


def test_bn_relu_learns_on_the_resnet_anchor(cifar_dir, tiny):
    cfg = EvalConfig(anchors=(AnchorConfig("resnet50", 0.125),),
                     data=DataConfig(source=str(cifar_dir), per_class=300, val_size=500),
                     train=TrainConfig(steps=80, batch_size=32, lr=0.05),
                     rejection=RejectionConfig(stability_steps=0, quality_threshold=0.0, max_step_ratio=0),
                     device="cpu")
    result = evaluate(zoo.get("bn_relu"), cfg)
    assert result.status is Status.OK
    assert result.accuracies["resnet50"] > 0.2  # chance is 0.1


@pytest.mark.slow
def test_plain_anchor_fails_a_linear_layer_that_the_resnet_anchor_trains(cifar_dir):
    """The reason the `plain` anchor exists (docs/results.md §2e): at tiny_plain's training a
    ResNet with linear norm-act sites trains about as well as with BN-ReLU (its shortcuts carry the
    signal), while a chain without shortcuts does not."""
    linear = Genome.from_expression("mul(sigmoid(zero), x)")  # x / 2
    acc = {}
    for arch, width in (("plain", 0.25), ("resnet50", 0.0625)):
        cfg = EvalConfig(anchors=(AnchorConfig(arch, width),),
                         data=DataConfig(source=str(cifar_dir), per_class=300, val_size=500, resolution=16),
                         train=TrainConfig(steps=200, batch_size=32, lr=0.2),
                         rejection=RejectionConfig(stability_steps=0, quality_threshold=0.0, max_step_ratio=0),
                         device="cpu")
        ev = Evaluator(cfg)
        acc[arch] = {name: ev(g).accuracies[arch] for name, g in (("bn_relu", zoo.get("bn_relu")), ("linear", linear))}
    gap = {arch: a["bn_relu"] - a["linear"] for arch, a in acc.items()}
    assert gap["plain"] > 0.05 and gap["plain"] > gap["resnet50"], acc


def test_candidate_rejected_carries_reason_and_stage():
    err = CandidateRejected("too slow", "budget")
    assert (err.reason, err.stage, str(err)) == ("too slow", "budget", "budget: too slow")


def test_unknown_anchor_is_refused_before_any_work():
    cfg = EvalConfig(anchors=(AnchorConfig("resnet18", 1.0),))
    with pytest.raises(KeyError, match="unknown architecture 'resnet18'"):
        Evaluator(cfg)
    with pytest.raises(ValueError, match="listed twice"):
        Evaluator(dataclasses.replace(cfg, anchors=(AnchorConfig("resnet50", 1), AnchorConfig("resnet50", 1))))


# -- staged evaluation: every anchor through each cheap stage before any long training ----------


class Recorder(Hook):
    """Logs what happens, in order: ("stability", anchor) and ("step", anchor, step)."""

    def __init__(self, reject_at: tuple[str, int] | None = None) -> None:
        self.events: list[tuple] = []
        self.reject_at = reject_at

    def before_training(self, ctx):
        self.events.append(("stability", ctx.anchor))

    def after_step(self, ctx, step, loss):
        self.events.append(("step", ctx.anchor, step))

    def at_evaluation(self, ctx, step, accuracy):
        if (ctx.anchor, step) == self.reject_at:
            raise CandidateRejected(f"low accuracy on {ctx.anchor}", "quality")


@pytest.fixture(scope="module")
def two_anchors(tiny):
    cfg, ev = tiny
    cfg = dataclasses.replace(cfg, anchors=(AnchorConfig("resnet50", 0.0625), AnchorConfig("mobilenetv2", 0.125)),
                              train=dataclasses.replace(cfg.train, steps=8),
                              rejection=dataclasses.replace(cfg.rejection, quality_step=3, stability_steps=1))
    return cfg, ev.data


def test_stages_run_on_every_anchor_before_the_long_training(two_anchors):
    cfg, data = two_anchors
    recorder = Recorder()
    result = Evaluator(cfg, hooks=[recorder], data=data)(zoo.get("bn_relu"))
    assert result.status is Status.OK
    events = recorder.events
    assert events[:2] == [("stability", "resnet50"), ("stability", "mobilenetv2")]
    steps = [(e[1], e[2]) for e in events[2:]]
    assert steps[:6] == [("resnet50", s) for s in (1, 2, 3)] + [("mobilenetv2", s) for s in (1, 2, 3)]
    assert steps[6:] == [("resnet50", s) for s in range(4, 9)] + [("mobilenetv2", s) for s in range(4, 9)]
    assert {"static", "build", "stability", "quality_phase", "rest_phase", "training"} <= set(result.timings)


def test_rejection_at_quality_on_the_last_anchor_costs_only_quality_steps(two_anchors):
    cfg, data = two_anchors
    recorder = Recorder(reject_at=("mobilenetv2", 3))
    result = Evaluator(cfg, hooks=[recorder], data=data)(zoo.get("bn_relu"))
    assert result.status is Status.REJECTED and result.stage == "quality"
    assert result.anchor == "mobilenetv2" and result.step == 3
    trained = [e for e in recorder.events if e[0] == "step"]
    assert len(trained) == 2 * cfg.rejection.quality_step  # K x quality_step, not a full training
    assert "rest_phase" not in result.timings


def test_fail_first_orders_by_mean_cost_over_rejection_odds():
    assert fail_first([AnchorRecord(), AnchorRecord(), AnchorRecord()]) == [0, 1, 2]  # nothing known: as listed
    # anchor 1 rejects 9 of 10 at 2 s; anchor 0 rejects 1 of 10 at 1 s; anchor 2 never ran to a verdict
    records = [AnchorRecord(10, 1, 10.0), AnchorRecord(10, 9, 20.0), AnchorRecord()]
    assert fail_first(records) == [1, 0, 2]  # 2 s / 0.83 before 1 s / 0.17
    records[1] = AnchorRecord(10, 9, 200.0)  # ... unless it costs far more: 20 s / 0.83 after 6 s
    assert fail_first(records) == [0, 1, 2]


def test_the_anchor_that_rejects_trains_first_and_the_order_changes_no_score(two_anchors):
    cfg, data = two_anchors
    fail_first_cfg = _with(cfg, **{"rejection.anchor_order": "fail-first"})
    recorder = Recorder(reject_at=("mobilenetv2", 3))
    ev = Evaluator(fail_first_cfg, hooks=[recorder], data=data)
    assert ev(zoo.get("bn_relu")).anchor == "mobilenetv2"  # ResNet-50 trained first: nothing known yet
    assert [(r.attempts, r.rejections) for r in ev.quality] == [(1, 0), (1, 1)]
    assert all(r.seconds > 0 for r in ev.quality)
    for order, first_trained, steps in (("fail-first", "mobilenetv2", 3), ("config", "resnet50", 6)):
        ev = Evaluator(_with(cfg, **{"rejection.anchor_order": order}), hooks=[recorder], data=data)
        ev.quality = [AnchorRecord(5, 0, 5.0), AnchorRecord(5, 5, 5.0)]  # mobilenetv2 rejects every layer
        recorder.events.clear()
        again = ev(zoo.get("bn_relu"))
        assert again.status is Status.REJECTED and (again.anchor, again.step) == ("mobilenetv2", 3)
        trained = [e[1:] for e in recorder.events if e[0] == "step"]
        assert trained[0] == (first_trained, 1) and len(trained) == steps, order  # ResNet-50's steps saved, or not
    # a layer that passes gets the same scores in either order: each anchor keeps its random state
    swapped = Evaluator(fail_first_cfg, data=data)
    swapped.quality = [AnchorRecord(5, 0, 5.0), AnchorRecord(5, 5, 5.0)]
    assert swapped.quality_order() == [1, 0]
    listed = Evaluator(cfg, data=data)  # the default: as listed, whatever was seen
    listed.quality = [AnchorRecord(5, 0, 5.0), AnchorRecord(5, 5, 5.0)]
    assert listed.quality_order() == [0, 1]
    a, b = swapped(zoo.get("bn_relu")), listed(zoo.get("bn_relu"))
    assert a.status is Status.OK and a.accuracies == b.accuracies and a.curves == b.curves


class OutOfTime(Hook):
    """Rejects at stage ``budget`` in the middle of one anchor's training, as the wall clock does."""

    def after_step(self, ctx, step, loss):
        if (ctx.anchor, step) == ("mobilenetv2", 2):
            raise CandidateRejected("wall-clock limit reached", "budget")


def test_a_wall_clock_rejection_is_not_counted_against_an_anchor(two_anchors):
    cfg, data = two_anchors
    ev = Evaluator(cfg, hooks=[OutOfTime()], data=data)
    result = ev(zoo.get("bn_relu"))
    assert (result.stage, result.anchor, result.step) == ("budget", "mobilenetv2", 2)
    assert [(r.attempts, r.rejections) for r in ev.quality] == [(1, 0), (0, 0)]  # ResNet-50 passed; no verdict


def test_training_in_stages_gives_what_one_run_gives(two_anchors):
    """Cutting each anchor's training at the quality step and interleaving the anchors changes no
    score: model, optimiser, batches and random state (MobileNet's dropout) resume as they were."""
    cfg, data = two_anchors
    staged = Evaluator(cfg, data=data)(zoo.get("bn_relu"))
    whole = Evaluator(_with(cfg, **{"rejection.quality_step": cfg.train.steps}), data=data)(zoo.get("bn_relu"))
    assert staged.status is Status.OK and whole.status is Status.OK
    assert staged.accuracies == whole.accuracies
    assert staged.curves["mobilenetv2"][cfg.train.steps] == whole.curves["mobilenetv2"][cfg.train.steps]


def test_step_budget_yardstick_is_the_reference_genome_through_the_same_compiler():
    from evaluation.evaluate import reference_genome

    assert reference_genome("resnet50") == zoo.get("bn_relu")
    assert reference_genome("efficientnet_b0") == zoo.get("bn_silu")


@pytest.mark.slow
def test_survivors_train_compiled_after_the_quality_stage(two_anchors, monkeypatch):
    """...and the compile stage compiles every graph that training and validation then run: its
    warm-up batches have their sizes (Inductor guards on the batch size)."""
    from torch._dynamo.utils import counters

    cfg, data = two_anchors
    torch._dynamo.reset()
    counters.clear()
    after_stage = []
    stage = Evaluator._compile

    def counted(self, runs, clock):
        stage(self, runs, clock)
        after_stage.append(counters["stats"]["unique_graphs"])

    monkeypatch.setattr(Evaluator, "_compile", counted)
    # a batch above 16 images: Inductor's kernels guard there, so a smaller warm-up batch would miss it
    compiled = Evaluator(_with(cfg, **{"train.compile": "survivors", "train.batch_size": 32}),
                         data=data)(zoo.get("bn_relu"))
    eager = Evaluator(_with(cfg, **{"train.batch_size": 32}), data=data)(zoo.get("bn_relu"))
    assert compiled.status is Status.OK and compiled.timings["compile"] > 0
    assert after_stage and after_stage[0] > 0
    assert counters["stats"]["unique_graphs"] == after_stage[0], "compiled after the compile stage"
    for anchor, accuracy in eager.accuracies.items():
        assert abs(compiled.accuracies[anchor] - accuracy) <= 0.1


def test_unknown_compile_policy_is_refused():
    cfg = EvalConfig(train=TrainConfig(compile="sometimes"))
    with pytest.raises(ValueError, match="train.compile must be off, survivors, always, got 'sometimes'"):
        Evaluator(cfg)


@pytest.mark.parametrize("shapes", ["per-resolution", "dynamic"])
def test_compiled_candidates_take_the_configured_shape_policy(two_anchors, monkeypatch, shapes):
    """``train.compile_shapes`` reaches every switch to compiled code (the candidate's and the step
    budget's BN-ReLU yardstick). Recorded, not compiled: the compiled paths have slow tests."""
    import evaluation.evaluate as evaluate_module

    cfg, data = two_anchors
    seen = []
    monkeypatch.setattr(evaluate_module, "use_compiled",
                        lambda model, on=True, *, shapes=None: seen.append((on, shapes)) or 0)
    cfg = _with(cfg, **{"train.compile": "always", "train.compile_shapes": shapes, "rejection.max_step_ratio": 100.0})
    result = Evaluator(cfg, data=data)(zoo.get("bn_relu"))
    assert result.status is Status.OK
    assert seen and {s for _, s in seen} == {shapes} and any(on for on, _ in seen), seen
