"""A search on disk: a directory that one driver owns (a lock) and an append-only event log,
``events.jsonl``, that says everything the search did — its config and every override it was
resumed with, every ask, every result in full (learning curves included), every retry of an
environment failure, every interruption. The searcher is a replay of that log
(:func:`gp.search.events.replay`); the MLflow runs are a projection of it, caught up on resume.
A kill at any instant loses at most the event being written.

Directories written before the log (a ``checkpoint.json`` holding the whole state) are converted
on their first resume: the log starts with the checkpoint's state as a snapshot.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from evaluation import config as cfgmod
from evaluation.config import ConfigError, EvalConfig, SearchConfig
from evaluation.progress import ProgressLine, Tally
from gp import formula
from gp.genome import Genome
from gp.search import Evolution, RandomSearch, Record, Searcher, run_search
from gp.search import events as ev
from gp.search.eventlog import EVENTS
from gp.search.record import FAILED, OK
from gp.space import SearchSpace

CHECKPOINT = "checkpoint.json"  # the whole-state file of searches written before the event log
LOCK = ".lock"
ALGORITHMS = ("evolution", "random")
RESUMABLE = ("search.budget", "search.executor", "search.workers", "eval.data.source", "eval.device",
             "ray_address")
"""What a resume may change; everything else is the search's identity."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the search stops after the event being written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class DirectoryBusy(RuntimeError):
    """Another live driver owns the search directory."""


def make_searcher(cfg: SearchConfig) -> Searcher:
    space = SearchSpace(batch_stats=cfg.batch_stats, max_nodes=cfg.max_nodes)
    if cfg.algorithm == "evolution":
        return Evolution(cfg.population_size, cfg.tournament_size, cfg.criterion, seed_layers=cfg.seed_layers,
                         mutation=cfg.mutation, window_rejected=cfg.window_rejected,
                         mutation_repeat=cfg.mutation_repeat, flat_tournament=cfg.flat_tournament,
                         require_x=cfg.require_x, min_window=cfg.min_window or None, screen=cfg.screen,
                         crossover=cfg.crossover, parsimony=cfg.parsimony, distinct=cfg.distinct,
                         adaptive_immigration=cfg.adaptive_immigration, preselect=cfg.preselect,
                         seed=cfg.seed, space=space)
    if cfg.algorithm == "random":
        return RandomSearch(seed=cfg.seed, space=space, screen=cfg.screen)
    raise ConfigError(f"unknown algorithm {cfg.algorithm!r}; valid: {', '.join(ALGORITHMS)}")


class DirectoryLock:
    """An exclusive ``flock`` on ``DIR/.lock``, held while the driver lives. The kernel releases it
    when the process dies, however it dies, so a lock left by a dead driver is never in the way;
    the file names the holder (pid, host) for the error a second driver gets."""

    def __init__(self, out: Path) -> None:
        path = Path(out) / LOCK
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise DirectoryBusy(f"{out} is in use by a running search ({holder}); wait for it to finish or stop "
                                "it, or pick another --out") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class Experiment:
    """One search's directory: its event log, replayed into a searcher, and its lock."""

    def __init__(self, out: Path, eval_cfg: EvalConfig, search_cfg: SearchConfig, searcher: Searcher,
                 log: ev.EventLog, lock: DirectoryLock, run_id: str | None = None, options: dict | None = None,
                 events: list[dict] | None = None) -> None:
        self.out, self.eval_cfg, self.search_cfg, self.searcher = Path(out), eval_cfg, search_cfg, searcher
        self.log, self._lock = log, lock
        self.run_id = run_id  # the MLflow parent run, once tracked
        self.options = dict(options or {})  # how it runs beyond the config: ray_address
        self._evaluated = [e for e in (events or []) if e["type"] == "evaluated"]  # for the tracking catch-up
        self._deferred: list[dict] = []  # events of a resume, written when it runs

    # -- opening -------------------------------------------------------------------------

    @staticmethod
    def exists(out: Path) -> bool:
        """Whether ``out`` holds a search (to resume rather than create): a log with at least its
        first event complete (a driver killed while writing it leaves none), or an old checkpoint."""
        return (Path(out) / CHECKPOINT).exists() or _has_log(Path(out))

    @classmethod
    def create(cls, out: Path, eval_cfg: EvalConfig, search_cfg: SearchConfig, *,
               options: dict | None = None) -> Experiment:
        out = Path(out)
        cfgmod.validate(eval_cfg)
        cfgmod.validate(search_cfg)
        if cls.exists(out):
            raise FileExistsError(f"{out} already holds a search; continue it with --resume {out} or pick "
                                  "another --out")
        out.mkdir(parents=True, exist_ok=True)
        lock = DirectoryLock(out)
        if cls.exists(out):  # created by a driver that won the race
            lock.release()
            raise FileExistsError(f"{out} already holds a search; continue it with --resume {out}")
        log, _ = ev.EventLog.open(out / EVENTS)
        exp = cls(out, eval_cfg, search_cfg, make_searcher(search_cfg), log, lock, options=options)
        log.append(_search_event(eval_cfg, search_cfg, exp.options))
        return exp

    @classmethod
    def resume(cls, out: Path, changes: dict | None = None) -> Experiment:
        """The search in ``out``, replayed from its log, with ``changes`` (keys of :data:`RESUMABLE`)
        applied now and saved in the log when it runs."""
        out = Path(out)
        if not cls.exists(out):
            raise FileNotFoundError(f"no search to resume in {out}: neither {EVENTS} nor {CHECKPOINT} is there")
        lock = DirectoryLock(out)
        try:
            if not _has_log(out):
                _convert_checkpoint(out)
            log, events = ev.EventLog.open(out / EVENTS)
        except BaseException:
            lock.release()
            raise
        exp = cls._replay(out, events, log, lock)
        changes = {k: v for k, v in (changes or {}).items() if v is not None}
        try:
            exp._apply(changes)
        except BaseException:
            exp.close()
            raise
        exp._deferred.append({"type": "resumed", "time": time.time(), "pid": os.getpid(), "changes": changes})
        return exp

    @classmethod
    def _replay(cls, out: Path, events: list[dict], log: ev.EventLog, lock: DirectoryLock) -> Experiment:
        if not events or events[0]["type"] != "search":
            lock.release()
            raise ev.LogError(f"{out / EVENTS} does not start with the search's config")
        first = events[0]
        eval_cfg = cfgmod.from_dict(first["config"]["eval"])
        search_cfg = logged_search_config(first["config"]["search"])
        exp = cls(out, eval_cfg, search_cfg, make_searcher(search_cfg), log, lock, options=first.get("options"),
                  events=events)
        for e in events:
            if e["type"] in ("resumed", "changed"):
                exp._apply(e["changes"])
            elif e["type"] == "tracked":
                exp.run_id = e["run_id"]
        try:
            exp.searcher = ev.replay(events, make_searcher(search_cfg).state())
        except BaseException:
            exp.close()
            raise
        return exp

    @classmethod
    def from_tracking(cls, tracker, run_id: str, out: Path, changes: dict | None = None) -> Experiment:
        """Rebuild a search from its tracked parent run and child runs in a new directory ``out``
        (the tracking store is then a projection of that directory's log, as for any search),
        with ``changes`` (keys of :data:`RESUMABLE`)."""
        eval_cfg, search_cfg = tracked_config(tracker, run_id)
        eval_cfg, search_cfg, options = apply_changes(eval_cfg, search_cfg, {}, changes or {})
        records = tracker.history(run_id)
        gaps = sorted(set(range(len(records))) - {r.ordinal for r in records})
        if gaps or len({r.ordinal for r in records}) != len(records):
            raise ev.LogError(f"run {run_id} does not hold an unbroken history (candidate {gaps[0] if gaps else '?'} "
                              "is missing or repeated); resume it from its directory with --resume DIR, which "
                              "logs the missing candidates")
        template = make_searcher(search_cfg).state()
        searcher = Searcher.from_history(template["kind"], template["params"], search_cfg.seed, template["space"],
                                         records)
        exp = cls.create(out, eval_cfg, search_cfg, options=options)
        exp.searcher = searcher
        exp.log.append({"type": "snapshot", "source": f"tracking run {run_id}", "state": searcher.state()})
        exp._track(run_id)
        return exp

    # -- state ---------------------------------------------------------------------------

    def config(self) -> dict:
        return {"eval": cfgmod.to_dict(self.eval_cfg), "search": cfgmod.to_dict(self.search_cfg)}

    def with_budget(self, budget: int) -> Experiment:
        self._apply({"search.budget": budget})
        self._deferred.append({"type": "changed", "time": time.time(), "changes": {"search.budget": budget}})
        return self

    def _apply(self, changes: dict) -> None:
        self.eval_cfg, self.search_cfg, self.options = apply_changes(self.eval_cfg, self.search_cfg, self.options,
                                                                     changes)

    def _track(self, run_id: str) -> None:
        if run_id != self.run_id:
            self.run_id = run_id
            self.log.append({"type": "tracked", "run_id": run_id})

    def close(self) -> None:
        """Close the log and give the directory up (also done by the kernel when the process dies)."""
        self.log.close()
        self._lock.release()

    # -- running -------------------------------------------------------------------------

    def run(self, executor, *, on_record=None, tracker=None, warn=None) -> list[Record]:
        """Run to the budget; with a tracker, the log is projected onto MLflow: the search's parent
        run (opened here, or re-opened) and one child run per evaluated candidate, the ones a
        crash or an outage left out first. ``warn(text)`` reports tracking trouble (stderr)."""
        for event in self._deferred:
            self.log.append(event)
        self._deferred.clear()
        projection = None
        if tracker is not None:
            self._track(tracker.start_search(self.out.name, self.config(), algorithm=self.search_cfg.algorithm,
                                             run_id=self.run_id))
            projection = _Projection(tracker, self.anchors, self._evaluated, warn or _stderr)

        def record_done(record: Record, result, searcher: Searcher, in_flight: int) -> None:
            if projection is not None:
                projection.add(ev.evaluated(record, result), searcher)
            if on_record is not None:
                on_record(record, result, searcher, in_flight)

        status = "FAILED"
        try:
            history = run_search(self.searcher, executor, self.search_cfg.budget, on_record=record_done, log=self.log)
            status = "FINISHED"
            return history
        except Interrupted as exc:
            status = "KILLED"
            self.log.append({"type": "interrupted", "time": time.time(), "signal": exc.signum})
            raise
        except KeyboardInterrupt:
            status = "KILLED"
            self.log.append({"type": "interrupted", "time": time.time(), "signal": 2})
            raise
        except Exception as exc:
            self.log.append({"type": "aborted", "time": time.time(), "reason": f"{type(exc).__name__}: {exc}"[:500]})
            raise
        finally:
            if projection is not None:
                projection.finish(status)

    @property
    def anchors(self) -> list[str]:
        return [a.arch for a in self.eval_cfg.anchors]


class _Projection:
    """The MLflow side of a log: child runs keyed by ordinal, written in order, caught up after a
    crash or an outage. A failed write never stops the search (the log holds the result); the
    backlog is retried with the next candidate and at the end."""

    def __init__(self, tracker, anchors: list[str], evaluated: list[dict], warn) -> None:
        self.tracker, self.anchors, self.warn = tracker, anchors, warn
        self.tally = Tally(anchors)
        self.backlog: list[dict] = []
        self.failing = False
        done = tracker.logged_ordinals(tracker.run_id) if evaluated else set()
        self.backlog = [e for e in evaluated if e["record"]["ordinal"] not in done]
        self.flush()

    def add(self, event: dict, searcher: Searcher) -> None:
        self.backlog.append(event)
        if self.flush():
            try:
                self.tracker.log_progress(self.tally.update(searcher.history))
            except Exception:  # noqa: BLE001 - progress metrics are a convenience
                pass

    def flush(self) -> bool:
        while self.backlog:
            event = self.backlog[0]
            try:
                self.tracker.log_candidate(Record.from_dict(event["record"]), event.get("result"), self.anchors)
            except Exception as exc:  # noqa: BLE001 - servers fail in many ways; the log keeps the result
                if not self.failing:
                    self.warn(f"tracking: cannot log candidate {event['record']['ordinal']} to "
                              f"{self.tracker.uri} ({type(exc).__name__}: {str(exc)[:200]}); the search goes "
                              "on and logs it later (or on --resume)")
                self.failing = True
                return False
            self.backlog.pop(0)
            if self.failing:
                self.warn(f"tracking: {self.tracker.uri} is back; caught up")
                self.failing = False
        return True

    def finish(self, status: str) -> None:
        caught_up = self.flush()
        try:
            self.tracker.finish(status=status)
        except Exception as exc:  # noqa: BLE001
            self.warn(f"tracking: could not mark run {self.tracker.run_id} {status} ({type(exc).__name__})")
        if not caught_up:
            self.warn(f"tracking: {len(self.backlog)} candidates are in the log but not yet in MLflow; "
                      "'evonorm search --resume DIR' logs them")


def tracked_config(tracker, run_id: str) -> tuple[EvalConfig, SearchConfig]:
    """The configs a tracked search logged."""
    from evaluation.tracking import config_of

    config = config_of(tracker.search_run(run_id))
    return cfgmod.from_dict(config["eval"]), logged_search_config(config["search"])


def logged_search_config(values: dict) -> SearchConfig:
    """A search config as a search logged it; keys added since take the value that search ran with
    (``screen``: off, for searches logged before screening existed), not today's default."""
    return cfgmod.search_from_dict({"screen": False} | values)


def apply_changes(eval_cfg: EvalConfig, search_cfg: SearchConfig, options: dict,
                  changes: dict) -> tuple[EvalConfig, SearchConfig, dict]:
    """The configs and options with a resume's ``changes`` (keys of :data:`RESUMABLE`; None: no
    change); anything else is a :class:`ConfigError`."""
    options = dict(options)
    for key, value in changes.items():
        if value is None:
            continue
        if key not in RESUMABLE:
            raise ConfigError(f"a resume cannot change {key}; it may change {', '.join(RESUMABLE)}")
        section, _, name = key.partition(".")
        if section == "search":
            search_cfg = dataclasses.replace(search_cfg, **{name: value})
        elif section == "eval":
            eval_cfg = cfgmod.override(eval_cfg, **{name: value})
        else:
            options[key] = value
    if search_cfg.executor == "serial" and changes.get("search.executor") == "serial" \
            and changes.get("search.workers") is None:
        search_cfg = dataclasses.replace(search_cfg, workers=1)
    return eval_cfg, cfgmod.validate(search_cfg), options


def _has_log(out: Path) -> bool:
    """Whether ``out`` has an event log with at least its first event complete."""
    try:
        with open(out / EVENTS, "rb") as f:
            return b"\n" in f.read(1 << 20)
    except FileNotFoundError:
        return False


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _search_event(eval_cfg: EvalConfig, search_cfg: SearchConfig, options: dict) -> dict:
    return {"type": "search", "version": 2, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(),
            "config": {"eval": cfgmod.to_dict(eval_cfg), "search": cfgmod.to_dict(search_cfg)},
            "options": options}


def _convert_checkpoint(out: Path) -> None:
    """Start the log of a directory written before it: its config, then its state as a snapshot."""
    blob = json.loads((out / CHECKPOINT).read_text())
    eval_cfg, search_cfg = cfgmod.from_dict(blob["eval"]), logged_search_config(blob["search"])
    tmp = out / f".{EVENTS}.{os.getpid()}.tmp"
    log = ev.EventLog(tmp)
    log.append(_search_event(eval_cfg, search_cfg, {}))
    log.append({"type": "snapshot", "source": CHECKPOINT, "state": blob["searcher"]})
    if blob.get("run_id"):
        log.append({"type": "tracked", "run_id": blob["run_id"]})
    log.close()
    os.replace(tmp, out / EVENTS)


class SearchDisplay:
    """Live line: done and in flight, rejections by stage, duplicates, best score per anchor."""

    def __init__(self, anchors: list[str], budget: int, line: ProgressLine | None = None) -> None:
        self.anchors, self.budget = anchors, budget
        self.line = line or ProgressLine()
        self.tally = Tally(anchors)

    def __call__(self, record: Record, result, searcher: Searcher, in_flight: int) -> None:
        self.line.show(self.text(searcher, in_flight), force=record.status == OK)

    def text(self, searcher: Searcher, in_flight: int) -> str:
        tally = self.tally.update(searcher.history)
        best_text = " ".join(f"{a} {b:.3f}" if b is not None else f"{a} -" for a, b in zip(self.anchors, tally.best,
                                                                                           strict=True))
        rej = ", ".join(f"{s} {n}" for s, n in tally.rejected.most_common()) or "none"
        return (f"done {searcher.evaluated}/{self.budget}  in flight {in_flight}  rejected: {rej}  "
                f"failed {tally.status[FAILED]}  duplicates {searcher.duplicates}  "
                f"screened {searcher.screened_out}  best: {best_text}")


def run_live(exp: Experiment, executor, tracker=None) -> list[Record]:
    """Run a search with the live display, closing the executor whatever happens."""
    display = SearchDisplay(exp.anchors, exp.search_cfg.budget)

    def warn(text: str) -> None:
        display.line.done()
        _stderr(text)

    try:
        return exp.run(executor, on_record=display, tracker=tracker, warn=warn)
    finally:
        display.line.done()
        executor.close()


def summary(exp: Experiment, top: int = 5) -> str:
    hist = exp.searcher.history
    counts = Counter(r.status for r in hist)
    lines = [f"search in {exp.out}: {exp.searcher.evaluated} evaluated, "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + f"; {exp.searcher.duplicates} duplicate proposals answered from the cache"
             + f"; {exp.searcher.screened_out} proposals screened out by the static probe"]
    best = exp.searcher.best(top)
    if not best:
        lines.append("no layer passed every check")
        return "\n".join(lines)
    head = f"{'#':>3} {'mean':>6} " + " ".join(f"{a[:12]:>12}" for a in exp.anchors) + "  formula"
    lines += ["", f"top layer{'s' * (len(best) > 1)} by mean accuracy:", head]
    for r in best:
        scores = " ".join(f"{v:>12.3f}" for v in r.objectives)
        lines.append(f"{r.ordinal:>3} {r.mean:>6.3f} {scores}  {formula(Genome.parse(r.genome))}")
    return "\n".join(lines)
