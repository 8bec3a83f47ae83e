"""Proxy training: deferred loss reads (the CUDA path, exercised here on the CPU) change nothing
the hooks see but when they see it."""

import dataclasses

import pytest
import torch

from evaluation.config import AnchorConfig, DataConfig, EvalConfig, TrainConfig
from evaluation.evaluate import load_data
from evaluation.hooks import CandidateRejected, FiniteLoss, Hook, Stopwatch, TrialContext
from evaluation.train import Training, build_model
from gp import Genome, layer_factory, zoo


class Losses(Hook):
    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def after_step(self, ctx, step, loss):
        self.seen.append((step, loss))


@pytest.fixture(scope="module")
def setup(cifar_dir):
    cfg = EvalConfig(anchors=(AnchorConfig("resnet50", 0.0625),),
                     data=DataConfig(source=str(cifar_dir), per_class=40, val_size=100),
                     train=TrainConfig(steps=10, batch_size=16, lr=0.05), device="cpu")
    return cfg, load_data(cfg, torch.device("cpu"))


def _training(cfg, data, genome, hooks, sync_every, lr=None):
    train = cfg.train if lr is None else dataclasses.replace(cfg.train, lr=lr)
    model = build_model(cfg.anchors[0], layer_factory(genome), torch.device("cpu"), seed=0)
    ctx = TrialContext(genome, "resnet50", model, torch.device("cpu"), batch=None)  # type: ignore[arg-type]
    return Training(ctx, data, train, eval_at={5, 10}, val_limit=50, hooks=hooks, seed=0, clock=Stopwatch(),
                    sync_every=sync_every)


def test_deferred_reads_show_every_step_with_the_same_loss_and_accuracy(setup):
    cfg, data = setup
    runs = {}
    for every in (1, 4):
        seen = Losses()
        run = _training(cfg, data, zoo.get("bn_relu"), [seen], every)
        run.advance(7)  # a segment ending between two reads: its last steps are read at its end
        assert [s for s, _ in seen.seen] == list(range(1, 8)) and run.step == 7
        curve = run.advance(10)
        runs[every] = (seen.seen, curve, len(run.ctx.step_times))
    assert runs[1][0] == runs[4][0]  # same steps, same losses, in order
    assert runs[1][1] == runs[4][1] and set(runs[4][1]) == {5, 10}
    assert runs[4][2] == 10  # one time per step


def test_non_finite_loss_found_late_is_reported_at_its_own_step(setup):
    """With reads every 4 steps the training runs past the bad step, but the rejection names the
    step where the loss went non-finite, as with a read after every step."""
    cfg, data = setup
    genome = Genome.from_expression("exp(mul(v0, square(x)))")
    found = {}
    for every in (1, 4):
        run = _training(cfg, data, genome, [FiniteLoss()], every, lr=1.0)
        with pytest.raises(CandidateRejected) as info:
            run.advance(10)
        found[every] = (info.value.reason, run.step)
    assert found[1] == found[4]
    assert "loss nan" in found[1][0] and found[1][1] == int(found[1][0].rsplit(" ", 1)[1])


def test_sync_every_below_one_is_refused(setup):
    cfg, data = setup
    with pytest.raises(ValueError, match="sync_every must be at least 1, got 0"):
        _training(cfg, data, zoo.get("bn_relu"), [], 0)


def test_accuracy_scores_exactly_the_limit_whatever_the_batch_size():
    """A limit that is not a multiple of the validation batch scores exactly ``limit`` images, and
    the batch size (50 on a CPU by default, 500 on an accelerator) changes no prediction: every
    layer is per sample in eval mode."""
    from evaluation.data import DeviceData, Split, default_val_batch
    from evaluation.train import accuracy

    assert default_val_batch(torch.device("cpu")) == 50 and default_val_batch(torch.device("cuda")) == 500
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (130, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.arange(130) % 10
    data = DeviceData(Split(images[:10], labels[:10]), Split(images, labels), "cpu")
    torch.manual_seed(0)
    model = build_model(AnchorConfig("resnet50", 0.0625), layer_factory(zoo.get("evonorm_b0")), torch.device("cpu"), 0)
    model.eval()
    with torch.no_grad():
        predicted = model(data.augmenter.normalize(images)).argmax(1)
    right = predicted == labels
    for limit in (70, 101, None):
        want = int(right[:limit].sum()) / len(right[:limit])
        for batch_size in (None, 7, 500):
            assert accuracy(model, data, limit, batch_size) == pytest.approx(want, abs=1e-12), (limit, batch_size)
    configured = DeviceData(Split(images[:10], labels[:10]), Split(images, labels), "cpu", val_batch=13)
    assert data.val_batch == 50 and configured.val_batch == 13  # data.val_batch in a config
    assert accuracy(model, configured, 101) == pytest.approx(int(right[:101].sum()) / 101, abs=1e-12)
