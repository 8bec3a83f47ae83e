"""MLflow tracking: the only module that imports mlflow.

One parent run per search (the full config as params; search-level metrics over time) and one
child run per candidate, whatever its status, with ``evonorm.*`` tags and ``acc.<anchor>`` /
``acc.mean`` / ``seconds.<stage>`` metrics. Only the driver writes (SQLite serialises writers),
with batched calls (``MlflowClient.log_batch``). The default tracking URI is MLflow's own
(``sqlite:///mlflow.db`` in the working directory); any other, an ``mlflow server`` over HTTP
included, is passed as ``uri``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from gp.genome import Genome
from gp.printing import formula
from gp.search.record import Record

PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "evonorm.kind"  # "search" on parent runs, "candidate" on child runs
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


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Writes one search to MLflow. Construction checks the server and the experiment, so a bad
    URI fails before any training starts."""

    def __init__(self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.uri = uri or mlflow.get_tracking_uri()
        # fail fast on an unreachable server instead of MLflow's minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
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
        if run_id is not None:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name=name,
                                         tags={KIND_TAG: "search", "evonorm.algorithm": algorithm})
            self.run_id = run.info.run_id
            params = [Param(k, v[:MAX_PARAM]) for k, v in _flatten(config).items()]
            params.append(Param("config.json", json.dumps(config)[:MAX_PARAM]))  # the whole, to rebuild it
            for i in range(0, len(params), 100):  # log_batch takes at most 100 params
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.seconds += time.perf_counter() - start
        return self.run_id

    def log_candidate(self, record: Record, result, anchors: list[str]) -> str:
        """One child run for one candidate (duplicates and rejections too)."""
        start = time.perf_counter()
        genome = Genome.parse(record.genome)
        tags = {PARENT_TAG: self.run_id, KIND_TAG: "candidate", "evonorm.genome": record.genome,
                "evonorm.key": record.key, "evonorm.formula": formula(genome), "evonorm.status": record.status,
                "evonorm.reason": record.reason or "", "evonorm.stage": record.stage or "",
                "evonorm.parent": record.parent or "", "evonorm.ordinal": str(record.ordinal),
                "evonorm.fingerprint": record.fingerprint or ""}
        if record.duplicate_of is not None:
            tags["evonorm.duplicate_of"] = str(record.duplicate_of)
        run = self.client.create_run(self.experiment_id, run_name=f"candidate-{record.ordinal:05d}", tags=tags)
        ts, metrics = _now_ms(), []
        if record.objectives is not None:
            metrics += [Metric(f"acc.{a}", v, ts, 0) for a, v in zip(anchors, record.objectives, strict=True)]
            metrics.append(Metric("acc.mean", record.mean, ts, 0))
        for stage, seconds in (getattr(result, "timings", None) or {}).items():
            metrics.append(Metric(f"seconds.{stage}", seconds, ts, 0))
        self.client.log_batch(run.info.run_id, metrics=metrics)
        status = "FAILED" if record.status == "failed" else "FINISHED"
        self.client.set_terminated(run.info.run_id, status=status)
        self.seconds += time.perf_counter() - start
        return run.info.run_id

    def log_progress(self, history: list[Record], anchors: list[str]) -> None:
        """Search-level metrics at step = candidates so far: best per anchor, counts."""
        start = time.perf_counter()
        step, ts = len(history), _now_ms()
        metrics = [Metric("candidates", step, ts, step),
                   Metric("evaluated", sum(r.evaluated for r in history), ts, step)]
        for k, a in enumerate(anchors):
            best = max((r.objectives[k] for r in history if r.objectives is not None), default=None)
            if best is not None:
                metrics.append(Metric(f"best.{a}", best, ts, step))
        means = [r.mean for r in history if r.objectives is not None]
        if means:
            metrics.append(Metric("best.mean", max(means), ts, step))
        counts = Counter(r.status for r in history)
        metrics += [Metric(f"count.{s}", n, ts, step) for s, n in counts.items()]
        stages = Counter(r.stage for r in history if r.status == "rejected" and r.stage)
        metrics += [Metric(f"rejected.{s}", n, ts, step) for s, n in stages.items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.seconds += time.perf_counter() - start

    def start_rerank(self, search_run: str, config: dict) -> str:
        """A run for a re-ranking of ``search_run``'s top layers (its child, so the UI groups them)."""
        run = self.client.create_run(self.experiment_id, run_name="rerank",
                                     tags={KIND_TAG: "rerank", PARENT_TAG: search_run})
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

    def finish(self, ok: bool = True) -> None:
        if self.run_id:
            self.client.set_terminated(self.run_id, status="FINISHED" if ok else "FAILED")

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
        """The search's history rebuilt from its child runs, in order."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'",
                                           max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
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


def run_status_ok(run) -> bool:
    return run.info.status == RunStatus.to_string(RunStatus.FINISHED)


__all__ = ["Tracker", "TrackingError", "anchors_of", "config_of", "run_status_ok"]
