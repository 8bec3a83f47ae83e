"""An MLflow server that goes down in the middle of a search: the search goes on, and MLflow ends
up with every candidate exactly once (caught up when the server is back, or on --resume)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from evaluation.experiment import EVENTS
from evaluation.tracking import Tracker
from gp.search import events as ev


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(tmp_path, port):
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                pytest.fail("mlflow server did not start")
            time.sleep(0.5)


def _stop(server):
    os.killpg(server.pid, 9)  # the server and its gunicorn/uvicorn workers
    server.wait(timeout=20)


def _evaluated(out):
    try:
        return [e for e in ev.read(out / EVENTS) if e["type"] == "evaluated"]
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_a_server_outage_loses_no_candidate_in_mlflow(tiny_config, tmp_path):
    port = _free_port()
    uri, out = f"http://127.0.0.1:{port}", tmp_path / "run"
    env = os.environ | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    server = _server(tmp_path, port)
    search = subprocess.Popen([sys.executable, "-m", "evonorm_cli", "search", "--config", str(tiny_config), "--out",
                               str(out), "--tracking-uri", uri, "--experiment", "t"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while len(_evaluated(out)) < 2:
            assert search.poll() is None, search.stderr.read()
            time.sleep(0.1)
        _stop(server)  # the outage
        while len(_evaluated(out)) < 5 and search.poll() is None:
            time.sleep(0.1)
        server = _server(tmp_path, port)  # back, with its store
        _, stderr = search.communicate(timeout=600)
        assert search.returncode == 0, stderr
        assert "tracking: cannot log candidate" in stderr
        resumed = subprocess.run([sys.executable, "-m", "evonorm_cli", "search", "--resume", str(out),
                                  "--tracking-uri", uri, "--experiment", "t"], env=env, capture_output=True,
                                 text=True, timeout=600)  # nothing left to evaluate; catches MLflow up if needed
        assert resumed.returncode == 0, resumed.stderr
        tracker = Tracker(uri, "t")
        run_id = next(e["run_id"] for e in ev.read(out / EVENTS) if e["type"] == "tracked")
        assert [r.ordinal for r in tracker.history(run_id)] == list(range(8))  # each once, none lost
        assert [r.key for r in tracker.history(run_id)] == [e["record"]["key"] for e in _evaluated(out)]
    finally:
        if search.poll() is None:
            search.kill()
        _stop(server)
