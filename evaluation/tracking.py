"""MLflow tracking: the only module that imports mlflow.

One parent run per search (the full config as params; search-level metrics over time) and one
child run per candidate, whatever its status, with ``evonorm.*`` tags and ``acc.<anchor>`` /
``acc.mean`` / ``seconds.<stage>`` metrics. Only the driver writes (SQLite serialises writers),
with batched calls (``MlflowClient.log_batch``). The default tracking URI is MLflow's own
(``sqlite:///mlflow.db`` in the working directory); any other, an ``mlflow server`` over HTTP
included, is passed as ``uri``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from gp.genome import Genome
from gp.printing import formula
from gp.search.record import FAILED, OK, Record

PARENT_TAG = "mlflow.parentRunId"
SOURCE_TAG = "evonorm.source"  # on a re-ranking: the search it re-ranks (a run id or a directory)
KIND_TAG = "evonorm.kind"  # "search" on parent runs, "candidate" on child runs
DRIVER_TAG = "evonorm.driver"  # "host pid" of the process writing a search run
DEFAULT_EXPERIMENT = "evonorm"
MAX_PARAM = 6000  # MLflow's limit on a param value's length
for _name in ("mlflow", "alembic"):  # their INFO lines (database set-up) would break the live display
    logging.getLogger(_name).setLevel(logging.WARNING)


class TrackingError(RuntimeError):
    """The tracking server cannot be reached, or the experiment cannot be used."""


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flatten(v, key + ".")
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else str(v)
    return out


@contextlib.contextmanager
def _fail_fast():
    """No HTTP retries and a short timeout for the calls inside, instead of MLflow's minutes of
    retries, so an unreachable server is reported at once; the process's settings are restored."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Writes one search to MLflow. Construction checks the server and the experiment, so a bad
    URI fails before any training starts."""

    def __init__(self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.uri = uri or mlflow.get_tracking_uri()
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            with _fail_fast():  # at start only: later calls keep MLflow's retries with back-off
                exp = self.client.get_experiment_by_name(experiment)
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise TrackingError(f"cannot reach the tracking store {self.uri!r}: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        try:
            if exp is None:
                self.experiment_id = self.client.create_experiment(experiment)
            elif exp.lifecycle_stage != "active":
                raise TrackingError(f"experiment {experiment!r} is deleted in {self.uri}; restore it or choose "
                                    "another --experiment")
            else:
                self.experiment_id = exp.experiment_id
        except MlflowException as exc:
            raise TrackingError(f"cannot create experiment {experiment!r} in {self.uri}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        self.experiment = experiment
        self.run_id: str | None = None
        self.seconds = 0.0  # time spent logging, to report its cost per candidate

    # -- writing -------------------------------------------------------------------------

    def start_search(self, name: str, config: dict, *, algorithm: str, run_id: str | None = None) -> str:
        """Open (or, with ``run_id``, re-open) the parent run and log the full config as params."""
        start = time.perf_counter()
        driver = f"{socket.gethostname()} {os.getpid()}"
        if run_id is not None:
            _check_no_other_driver(self.search_run(run_id))
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            self.client.set_tag(run_id, DRIVER_TAG, driver)
        else:
            run = self.client.create_run(self.experiment_id, run_name=name,
                                         tags={KIND_TAG: "search", "evonorm.algorithm": algorithm, DRIVER_TAG: driver})
            self.run_id = run.info.run_id
            params = [Param(k, v[:MAX_PARAM]) for k, v in _flatten(config).items()]
            params.append(Param("config.json", json.dumps(config)[:MAX_PARAM]))  # the whole, to rebuild it
            for i in range(0, len(params), 100):  # log_batch takes at most 100 params
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.seconds += time.perf_counter() - start
        return self.run_id

    def check_free(self, run_id: str) -> None:
        """Raise :class:`TrackingError` if a live driver on this machine writes ``run_id``."""
        _check_no_other_driver(self.search_run(run_id))

    def log_candidate(self, record: Record, result, anchors: list[str]) -> str:
        """One child run for one candidate, rejected and failed ones too. ``result``: the
        evaluator's result as a dict (as the event log holds it) or object, or None. Learning
        curves become the steps of ``curve.<anchor>``; parameter counts ``params.<anchor>``; the
        anchor and step that decided a rejection are tags."""
        start = time.perf_counter()
        result = _as_dict(result)
        genome = Genome.parse(record.genome)
        tags = {PARENT_TAG: self.run_id, KIND_TAG: "candidate", "evonorm.genome": record.genome,
                "evonorm.key": record.key, "evonorm.formula": formula(genome), "evonorm.status": record.status,
                "evonorm.reason": record.reason or "", "evonorm.stage": record.stage or "",
                "evonorm.parent": record.parent or "", "evonorm.ordinal": str(record.ordinal),
                "evonorm.fingerprint": record.fingerprint or ""}
        if record.duplicate_of is not None:
            tags["evonorm.duplicate_of"] = str(record.duplicate_of)
        if record.status != OK and result.get("anchor"):
            tags |= {"evonorm.anchor": str(result["anchor"]), "evonorm.step": str(result.get("step", 0))}
        run = self.client.create_run(self.experiment_id, run_name=f"candidate-{record.ordinal:05d}", tags=tags)
        try:
            ts, metrics = _now_ms(), []
            if record.objectives is not None:
                metrics += [Metric(f"acc.{a}", v, ts, 0) for a, v in zip(anchors, record.objectives, strict=True)]
                metrics.append(Metric("acc.mean", record.mean, ts, 0))
            for stage, seconds in (result.get("timings") or {}).items():
                metrics.append(Metric(f"seconds.{stage}", seconds, ts, 0))
            for anchor, count in (result.get("params") or {}).items():
                metrics.append(Metric(f"params.{anchor}", count, ts, 0))
            for anchor, curve in (result.get("curves") or {}).items():
                metrics += [Metric(f"curve.{anchor}", acc, ts, int(step)) for step, acc in curve.items()
                            if acc is not None and math.isfinite(acc)]
            for i in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
                self.client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
            status = "FAILED" if record.status == FAILED else "FINISHED"
            self.client.set_terminated(run.info.run_id, status=status)
        except BaseException:
            with contextlib.suppress(Exception):  # a half-logged run would look logged: drop it
                self.client.delete_run(run.info.run_id)
            raise
        self.seconds += time.perf_counter() - start
        return run.info.run_id

    def logged_ordinals(self, run_id: str) -> set[int]:
        """Ordinals of the candidates already logged under ``run_id`` (complete runs only; a run a
        crash left open is deleted, to be logged again)."""
        done = set()
        for run in self._children(run_id, "candidate"):
            if run.info.status == "RUNNING":
                self.client.delete_run(run.info.run_id)
            else:
                done.add(int(run.data.tags["evonorm.ordinal"]))
        return done

    def _children(self, run_id: str, kind: str) -> list:
        runs, token = [], None
        filter_string = f"tags.`{PARENT_TAG}` = '{run_id}' and tags.`{KIND_TAG}` = '{kind}'"
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000,
                                           page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def log_progress(self, tally) -> None:
        """Search-level metrics at step = candidates so far, from a running
        :class:`evaluation.progress.Tally`: best per anchor, counts by status and stage."""
        start = time.perf_counter()
        step, ts = tally.seen, _now_ms()
        metrics = [Metric("candidates", step, ts, step), Metric("evaluated", step, ts, step)]
        metrics += [Metric(f"best.{a}", b, ts, step) for a, b in zip(tally.anchors, tally.best, strict=True)
                    if b is not None]
        if tally.best_mean is not None:
            metrics.append(Metric("best.mean", tally.best_mean, ts, step))
        metrics += [Metric(f"count.{s}", n, ts, step) for s, n in tally.status.items()]
        metrics += [Metric(f"rejected.{s}", n, ts, step) for s, n in tally.rejected.items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.seconds += time.perf_counter() - start

    def start_rerank(self, search_run: str | None, config: dict, *, source: str | None = None) -> str:
        """A run for a re-ranking of ``search_run``'s top layers (its child, so the UI groups them),
        or, with ``search_run`` None, of the search at ``source`` (a directory), a top-level run."""
        if search_run is None and source is None:
            raise ValueError("start_rerank needs the search's run id or its directory (source)")
        tags = {KIND_TAG: "rerank", SOURCE_TAG: source or search_run}
        if search_run is not None:
            tags[PARENT_TAG] = search_run
        run = self.client.create_run(self.experiment_id, run_name="rerank", tags=tags)
        self.run_id = run.info.run_id
        params = [Param(k, v[:MAX_PARAM]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        return self.run_id

    def log_rerank_rows(self, rows: list[tuple[str, str, float]]) -> None:
        """Rank, layer and mean accuracy of each re-ranked layer."""
        ts = _now_ms()
        metrics = [Metric("rerank.mean", mean, ts, rank) for rank, (_, _, mean) in enumerate(rows, 1)
                   if math.isfinite(mean)]
        tags = [RunTag(f"rerank.{rank:02d}", f"{name}: {genome}"[:5000]) for rank, (name, genome, _) in
                enumerate(rows, 1)]
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)

    def start_transfer(self, name: str, config: dict) -> str:
        """A parent run for a transfer study (kind ``transfer``), its config as params."""
        run = self.client.create_run(self.experiment_id, run_name=name, tags={KIND_TAG: "transfer"})
        self.run_id = run.info.run_id
        params = [Param(k, v[:MAX_PARAM]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        return self.run_id

    def log_transfer_layer(self, label: str, genome: str, accuracies: list[float], metrics: dict[str, float], *,
                           native: bool = False) -> str:
        """One child run per layer of a transfer study: ``acc`` per seed (step = seed index),
        ``acc.mean`` and ``acc.sd`` over the seeds that trained, and ``metrics``."""
        tags = {PARENT_TAG: self.run_id, KIND_TAG: "transfer-layer", "evonorm.layer": label, "evonorm.genome": genome,
                "evonorm.formula": formula(Genome.parse(genome)), "evonorm.native": str(native).lower()}
        run = self.client.create_run(self.experiment_id, run_name=label, tags=tags)
        ts = _now_ms()
        finite = [a for a in accuracies if math.isfinite(a)]
        values = [Metric("acc", a, ts, k) for k, a in enumerate(accuracies) if math.isfinite(a)]
        if finite:
            values.append(Metric("acc.mean", sum(finite) / len(finite), ts, 0))
            mean = sum(finite) / len(finite)
            sd = math.sqrt(sum((a - mean) ** 2 for a in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
            values.append(Metric("acc.sd", sd, ts, 0))
        values.append(Metric("seeds.diverged", len(accuracies) - len(finite), ts, 0))
        values += [Metric(k, float(v), ts, 0) for k, v in metrics.items() if math.isfinite(float(v))]
        self.client.log_batch(run.info.run_id, metrics=values)
        self.client.set_terminated(run.info.run_id, status="FINISHED")
        return run.info.run_id

    def log_artifacts(self, folder: Path, run_id: str | None = None) -> None:
        self.client.log_artifacts(run_id or self.run_id, str(folder))

    def finish(self, ok: bool = True, *, status: str | None = None) -> None:
        """End the current run: FINISHED or FAILED by ``ok``, or ``status`` (e.g. KILLED)."""
        if self.run_id:
            self.client.set_terminated(self.run_id, status=status or ("FINISHED" if ok else "FAILED"))

    # -- reading -------------------------------------------------------------------------

    def resolve(self, run: str) -> str:
        """A parent run id, or ``latest``: the newest search in the experiment."""
        if run != "latest":
            return run
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'search'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            raise TrackingError(f"no search run in experiment {self.experiment!r} at {self.uri}")
        return runs[0].info.run_id

    def search_run(self, run_id: str):
        try:
            return self.client.get_run(run_id)
        except MlflowException:
            raise TrackingError(f"no run {run_id!r} in {self.uri}") from None

    def searches(self) -> list:
        """Every search (parent) run of the experiment, newest first."""
        return list(self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'search'",
                                            order_by=["attributes.start_time DESC"], max_results=1000))

    def history(self, run_id: str) -> list[Record]:
        """The search's history rebuilt from its candidate runs (not its other children, such as
        re-rankings), in order."""
        runs = [r for r in self._children(run_id, "candidate") if r.info.status != "RUNNING"]
        anchors = anchors_of(self.search_run(run_id))
        records = [_record(r, anchors) for r in runs]
        return sorted(records, key=lambda r: r.ordinal)


def config_of(run) -> dict:
    """The full config a search run logged: {"eval": ..., "search": ...}."""
    try:
        return json.loads(run.data.params["config.json"])
    except KeyError:
        raise TrackingError(f"run {run.info.run_id} is not an evonorm search (no config.json param)") from None


def anchors_of(run) -> list[str]:
    """The anchor names of a search run, from its logged config."""
    return [a["arch"] for a in config_of(run)["eval"]["anchors"]]


def _record(run, anchors: list[str]) -> Record:
    tags, metrics = run.data.tags, run.data.metrics
    objectives = None
    if all(f"acc.{a}" in metrics for a in anchors) and anchors:
        objectives = tuple(metrics[f"acc.{a}"] for a in anchors)
        if not all(math.isfinite(v) for v in objectives):
            objectives = None
    dup = tags.get("evonorm.duplicate_of")
    return Record(ordinal=int(tags["evonorm.ordinal"]), genome=tags["evonorm.genome"], key=tags["evonorm.key"],
                  status=tags["evonorm.status"], objectives=objectives, parent=tags.get("evonorm.parent") or None,
                  reason=tags.get("evonorm.reason") or None, stage=tags.get("evonorm.stage") or None,
                  fingerprint=tags.get("evonorm.fingerprint") or None, duplicate_of=int(dup) if dup else None)


def _check_no_other_driver(run) -> None:
    """Refuse to write a search run that a live process on this machine is writing (a --resume-run
    beside the --resume of the same search). A driver on another machine cannot be checked."""
    holder = run.data.tags.get(DRIVER_TAG, "")
    host, _, pid = holder.partition(" ")
    if run.info.status != "RUNNING" or host != socket.gethostname() or not pid.isdigit():
        return
    pid_ = int(pid)
    if pid_ == os.getpid():
        return
    try:
        os.kill(pid_, 0)
    except ProcessLookupError:
        return  # died without closing the run (kill -9): the run is free
    except PermissionError:
        pass
    raise TrackingError(f"run {run.info.run_id} is being written by a running search (pid {pid_} on {host}); "
                        "stop it first, or continue the search from its own directory with --resume DIR")


def _as_dict(result) -> dict:
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    if hasattr(result, "to_json"):
        return json.loads(result.to_json())
    return {"timings": getattr(result, "timings", None) or {}}


def run_status_ok(run) -> bool:
    return run.info.status == RunStatus.to_string(RunStatus.FINISHED)


__all__ = ["Tracker", "TrackingError", "anchors_of", "config_of", "run_status_ok"]
