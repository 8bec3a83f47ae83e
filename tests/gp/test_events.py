"""The event log: replay gives the searcher a live run had; a torn last line is survived; the loop
logs before anyone else sees a result; environment failures are never verdicts on a layer."""

import json

import pytest

from gp import zoo
from gp.search import Evolution, RandomSearch, SearchAborted, run_search
from gp.search import events as ev
from gp.search.engine import Outcome, SerialExecutor
from gp.search.surrogate import Surrogate


@pytest.fixture(scope="module")
def surrogate():
    return Surrogate(zoo.get("evonorm_s0"))


def _logged_run(tmp_path, surrogate, budget, **kw):
    searcher = Evolution(8, 3, seed=5, **kw)
    log, _ = ev.EventLog.open(tmp_path / "events.jsonl")
    run_search(searcher, SerialExecutor(surrogate), budget, log=log)
    log.close()
    return searcher, ev.read(tmp_path / "events.jsonl")


def test_replay_rebuilds_the_live_searcher_exactly(tmp_path, surrogate):
    live, events = _logged_run(tmp_path, surrogate, 30)
    assert sum(e["type"] == "evaluated" for e in events) == 30
    replayed = ev.replay(events, Evolution(8, 3, seed=5).state())
    assert replayed.state() == live.state()
    assert replayed.duplicates == live.duplicates > 0  # counters are part of the log too
    assert replayed.screened == live.screened and live.screened_out > 0
    assert any("screened" in e for e in events if e["type"] == "asked")


@pytest.mark.parametrize("cut", [1, 2, 7, 11, 20])
def test_a_kill_after_any_event_resumes_as_if_never_killed(tmp_path, surrogate, cut):
    straight = Evolution(8, 3, seed=5)
    run_search(straight, SerialExecutor(surrogate), 25)
    _, events = _logged_run(tmp_path, surrogate, 12)
    resumed = ev.replay(events[:cut], Evolution(8, 3, seed=5).state())  # the log as a kill left it
    run_search(resumed, SerialExecutor(surrogate), 25)
    assert resumed.history == straight.history
    assert resumed.state() == straight.state()  # RNG and counters too, not only the records


def test_a_torn_last_line_is_dropped_and_cut_off_before_the_next_append(tmp_path, surrogate):
    _, events = _logged_run(tmp_path, surrogate, 5)
    path = tmp_path / "events.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"type": "asked", "genome": "t1 = ab')  # the kill hit mid-write
    assert ev.read(path) == events
    log, again = ev.EventLog.open(path)
    log.append({"type": "note"})
    log.close()
    assert again == events and path.read_bytes() == whole + b'{"type":"note"}\n'


def test_complete_json_without_its_newline_counts_as_torn(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a"}\n{"type": "b"}')
    assert [e["type"] for e in ev.read(path)] == ["a"]


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a"}\nnot json\n{"type": "b"}\n')
    with pytest.raises(ev.LogError, match="line 2 is not JSON"):
        ev.read(path)


def test_a_record_out_of_order_is_an_error(tmp_path, surrogate):
    _, events = _logged_run(tmp_path, surrogate, 6)
    evaluated = [i for i, e in enumerate(events) if e["type"] == "evaluated"]
    del events[evaluated[2]]  # a gap: record 3 follows record 1
    with pytest.raises(ev.LogError, match="record 3 where record 2 was due"):
        ev.replay(events, Evolution(8, 3, seed=5).state())


def test_evaluated_events_carry_the_full_result(tmp_path, surrogate):
    _, events = _logged_run(tmp_path, surrogate, 4)
    done = [e for e in events if e["type"] == "evaluated"]
    assert all(e["result"]["status"] == e["record"]["status"] for e in done if e["result"]["status"])
    assert json.loads(json.dumps(done)) == done


class _CountingExecutor(SerialExecutor):
    """A serial executor that refuses more work than its capacity, as the worker pools do."""

    def __init__(self, evaluate, capacity):
        super().__init__(evaluate)
        self.capacity = capacity

    def submit(self, genome):
        assert len(self._queue) < self.capacity, "submitted beyond capacity"
        super().submit(genome)


def test_pending_genomes_beyond_capacity_wait_for_a_free_worker(surrogate):
    searcher = RandomSearch(seed=3)
    for _ in range(5):
        searcher.ask()  # five in flight when a 5-worker driver was killed
    run_search(searcher, _CountingExecutor(surrogate, 2), 8)  # resumed with 2 workers
    assert searcher.evaluated == 8 and not searcher.pending


def _data_error(genome):
    return Outcome(None, status="failed", reason="DataError: no train/ directory in /nope", stage="data")


def test_environment_failures_stop_the_search_and_are_never_told(tmp_path):
    searcher = RandomSearch(seed=1)
    log, _ = ev.EventLog.open(tmp_path / "events.jsonl")
    with pytest.raises(SearchAborted, match="no train/ directory in /nope"):
        run_search(searcher, SerialExecutor(_data_error), 10, log=log)
    assert searcher.evaluated == 0 and len(searcher.pending) == 1  # asked, never a verdict
    types = [e["type"] for e in ev.read(tmp_path / "events.jsonl")]
    assert types == ["asked", "retried", "retried", "retried"]


def test_a_search_resumed_after_an_environment_failure_evaluates_the_layer(tmp_path, surrogate):
    searcher = RandomSearch(seed=1)
    log, _ = ev.EventLog.open(tmp_path / "events.jsonl")
    with pytest.raises(SearchAborted):
        run_search(searcher, SerialExecutor(_data_error), 3, log=log)
    log, events = ev.EventLog.open(tmp_path / "events.jsonl")
    resumed = ev.replay(events, RandomSearch(seed=1).state())
    run_search(resumed, SerialExecutor(surrogate), 3, log=log)  # the data is back
    first = next(e for e in events if e["type"] == "asked")
    assert resumed.history[0].key == first["key"] and resumed.history[0].reason is None


def test_one_environment_failure_among_good_results_is_retried_not_fatal(surrogate):
    failures = iter([True, False, False, True, False])

    def flaky(genome):
        return _data_error(genome) if next(failures, False) else surrogate(genome)

    searcher = RandomSearch(seed=2)
    run_search(searcher, SerialExecutor(flaky), 6)
    assert searcher.evaluated == 6 and all(r.stage != "data" for r in searcher.history)


def test_the_same_failure_again_and_again_stops_the_search():
    def broken(genome):
        return Outcome(None, status="failed", reason="RuntimeError: CUDA error: no kernel image", stage="error")

    searcher = RandomSearch(seed=1)
    with pytest.raises(SearchAborted, match="the last 5 evaluations all failed .*no kernel image"):
        run_search(searcher, SerialExecutor(broken), 50)
    assert searcher.evaluated == 5
