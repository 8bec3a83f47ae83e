import pytest

from analysis.stats import sign_test


def test_sign_test_is_the_binomial_tail():
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(9, 1) == pytest.approx(11 / 1024)
    assert sign_test(0, 0) == 1.0 and sign_test(1, 1) == pytest.approx(0.75)
