import importlib.util
from pathlib import Path

import pytest

from analysis.nearness import nearness, parts, share, table
from gp import zoo
from gp.genome import Genome
from gp.search import Evolution
from gp.search.eventlog import EventLog, evaluated
from gp.search.record import Record

BN_RELU = zoo.get("bn_relu")


def _script():
    path = Path(__file__).parents[2] / "scripts" / "nearness.py"
    spec = importlib.util.spec_from_file_location("nearness_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_reference_holds_all_its_parts_and_only_those_that_read_x():
    assert parts(BN_RELU) == {"mean_batch(x)", "neg(mean_batch(x))", "add(neg(mean_batch(x)), x)",
                              "std_batch(x)", "div(add(neg(mean_batch(x)), x), std_batch(x))",
                              "max(div(add(neg(mean_batch(x)), x), std_batch(x)), zero)"}
    assert share(BN_RELU, BN_RELU) == 1.0
    assert parts(Genome.from_expression("add(x, std_batch(v1))")) == {"add(std_batch(v1), x)"}


def test_argument_order_of_commutative_ops_does_not_matter_and_structure_does():
    swapped = Genome.from_expression("max(zero, div(add(neg(mean_batch(x)), x), std_batch(x)))")
    assert share(swapped, BN_RELU) == 1.0
    assert share(Genome.from_expression("tanh(div(x, std_batch(x)))"), BN_RELU) == pytest.approx(1 / 6)
    no_relu = Genome.from_expression("div(add(x, neg(mean_batch(x))), std_batch(x))")
    assert share(no_relu, BN_RELU) == pytest.approx(5 / 6)
    # x - mean written another way is the same function but not the same structure
    other = Genome.from_expression("neg(add(mean_batch(x), neg(x)))")
    assert share(other, BN_RELU) == pytest.approx(1 / 6)  # mean_batch(x) only
    assert share(Genome.from_expression("tanh(x)"), BN_RELU) == 0.0


def test_dead_nodes_hold_no_parts():
    g = Genome.parse("t1 = std_batch(x); t2 = tanh(x)")
    assert parts(g) == {"tanh(x)"}


def test_a_reference_that_ignores_x_is_refused():
    with pytest.raises(ValueError, match="reads no x"):
        share(BN_RELU, Genome.from_expression("tanh(v1)"))


def _record(i, expr, objectives):
    g = Genome.from_expression(expr)
    return Record(i, str(g), g.key, "ok" if objectives else "rejected", objectives)


def test_nearness_counts_evaluated_and_passing_candidates_by_parts_held():
    records = [_record(0, "tanh(x)", (0.3,)), _record(1, "std_batch(x)", None),
               _record(2, "div(add(x, neg(mean_batch(x))), std_batch(x))", (0.29,)),
               _record(3, "tanh(div(x, std_batch(x)))", (0.28,))]
    n = nearness(records, BN_RELU, top=2)
    assert n.counts == (1, 2, 0, 0, 0, 1, 0) and n.passing == (1, 1, 0, 0, 0, 1, 0)
    assert [(k, r.ordinal) for k, r in n.nearest] == [(5, 2), (1, 3)]  # most parts, then best score
    lines = table([("s", n)])
    assert "1 (1)" in lines[2] and "5/6  #2" in lines[4]
    lines = table([("s", n), ("t", n)])
    assert lines[4].split() == ["all", "2", "2", "(2)", "4", "(2)"] + ["0", "(0)"] * 3 + ["2", "(2)", "0", "(0)"]


def test_the_script_reads_search_directories(tmp_path, capsys):
    from gp.search.surrogate import Surrogate

    main = _script().main

    searcher = Evolution(8, 3, seed=0)
    searcher.run(Surrogate(BN_RELU), 20)
    out = tmp_path / "evolution-s0"
    out.mkdir()
    log = EventLog(out / "events.jsonl")
    for record in searcher.history:
        log.append(evaluated(record, None))
    log.close()
    main([str(out), "--budget", "12"])
    text = capsys.readouterr().out
    expected = nearness(searcher.history[:12], BN_RELU)
    row = next(line for line in text.splitlines() if line.startswith(str(out)))
    assert [int(c.split(" (")[0]) for c in row.split()[1::2]] == list(expected.counts)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])


def test_the_script_counts_the_generator_and_mutants_without_a_search(capsys):
    script = _script()
    argv = ["--prior", "300", "--children", "100", "--parents", "div(add(x, neg(mean_batch(x))), std_batch(x))"]
    script.main(argv)
    first = capsys.readouterr().out
    script.main(argv)
    assert capsys.readouterr().out == first  # seeded
    prior, children = first.splitlines()[1:]
    assert prior.startswith("300 random graphs") and children.startswith("100 children (indel, repeat 0.5)")
    assert "which holds 5/6" in children
    for line, n in ((prior, 300), (children, 100)):
        counts = [int(c.split(": ")[1].split(" ")[0]) for c in line.split(": ", 1)[1].split(", ")]
        assert sum(counts) == n
    with pytest.raises(SystemExit):
        script.main(["--children", "5"])  # no parents
