import numpy as np
import pytest

from gp.search.model import CLIP, BehaviourModel, features


def test_features_compress_and_bound_every_value():
    f = features(np.array([0.0, 1.0, -1.0, np.e - 1, 1e6, 1e30, -np.inf, np.inf, np.nan]))
    assert f[:4] == pytest.approx([0.0, np.log(2), -np.log(2), 1.0])
    assert f[4] == pytest.approx(np.log1p(1e6)) and f[5] == CLIP  # a huge value is clipped
    assert list(f[6:]) == [-CLIP, CLIP, 0.0]


def test_the_model_predicts_near_a_layer_what_that_layer_scored():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12))
    y = -np.linalg.norm(x - x[0], axis=1)  # the score falls with the distance from layer 0
    model = BehaviourModel(x, y)
    near_best, near_worst = x[0] + 0.01, x[int(np.argmin(y))] + 0.01
    mean, _ = model.predict(np.stack([near_best, near_worst]))
    assert mean[0] > mean[1]
    ei = model.expected_improvement(np.stack([near_best, near_worst]))
    assert ei[0] > ei[1]


def test_a_behaviour_unlike_any_evaluated_one_is_uncertain():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8))
    model = BehaviourModel(x, rng.normal(size=30))
    _, sd = model.predict(np.stack([x[3], x[3] + 50.0]))
    assert sd[0] < 0.2 < 0.9 < sd[1]


def test_scores_enter_by_rank_so_their_scale_does_not_matter():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(25, 6)), rng.normal(size=25)
    probe = rng.normal(size=(5, 6))
    a = BehaviourModel(x, y).expected_improvement(probe)
    b = BehaviourModel(x, 1e6 * y ** 3 - 7).expected_improvement(probe)  # monotone: the same ranks
    assert a == pytest.approx(b)
    worst = np.where(np.arange(25) < 5, -np.inf, y)  # rejected layers: the lowest rank, tied
    assert np.isfinite(BehaviourModel(x, worst).expected_improvement(probe)).all()


def test_the_model_needs_two_layers():
    with pytest.raises(ValueError, match="at least 2"):
        BehaviourModel(np.zeros((1, 3)), np.zeros(1))
