import pytest

from gp import Genome, fingerprint, probe, zoo


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_layers_pass_the_static_checks(name):
    report = probe(zoo.get(name))
    assert report.problem is None
    assert report.uses_batch == name.startswith(("bn_", "evonorm_b"))


@pytest.mark.parametrize("expr, problem", [
    ("exp(exp(exp(square(x))))", "output not finite on the probe batch"),
    ("add(v0, sigmoid(v1))", "output does not depend on x"),
    ("add(x, neg(x))", "output does not depend on x"),
    ("mul(x, zero)", "output does not depend on x"),
    ("mean_layer(mean_batch(x))", "output is constant"),
])
def test_hopeless_layers_are_caught(expr, problem):
    assert probe(Genome.from_expression(expr)).problem == problem


def test_live_nodes_in_report():
    assert probe(Genome.parse("t1 = exp(x); t2 = neg(x)")).live_nodes == 1


def test_fingerprint_matches_equivalent_layers_and_separates_others():
    s0 = zoo.get("evonorm_s0")
    rewritten = Genome.from_expression("div(mul(sigmoid(mul(x, v1)), add(x, zero)), std_group(x))")
    assert rewritten.key != s0.key
    assert fingerprint(rewritten) == fingerprint(s0)
    assert fingerprint(zoo.get("evonorm_s1")) != fingerprint(s0)
