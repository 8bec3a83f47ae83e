"""Fault injection: smoke searches over HTTP, broken at random moments, resumed, and audited.

Each trial runs one small search (process executor, 2 workers) against an ``mlflow server`` and,
at a random number of finished evaluations, injects one fault: SIGKILL of the driver, SIGTERM of
the driver, SIGKILL of a worker, or SIGKILL of the mlflow server (restarted a few seconds later).
The search is resumed with ``--resume`` until it finishes. Then it counts:

- evaluations lost: finished evaluations in the log before a fault and missing after it;
- evaluations repeated: ordinals or layer keys evaluated twice (a retry of a transient failure,
  such as a killed worker, is a retry, not a repeat);
- MLflow runs that differ from the log (candidate child runs, by ordinal and key);
- orphaned processes: children of a dead driver still alive 5 s after it died.

    python benchmarks/fault_injection.py --data ../shared/data/cifar10 --trials 10

Needs 2+ cores; each trial takes a minute or two on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.experiment import EVENTS  # noqa: E402
from evaluation.tracking import Tracker  # noqa: E402
from gp.search import events as ev  # noqa: E402
from gp.search.searcher import is_transient  # noqa: E402

CONFIG = """
device = "cpu"
seed = 0
[[anchors]]
arch = "resnet50"
width = 0.0625
[data]
source = "{data}"
per_class = 30
val_size = 60
[train]
steps = 4
batch_size = 16
lr = 0.05
[rejection]
quality_step = 4
quality_threshold = 0.0
stability_steps = 2
stability_batch = 8
max_step_ratio = 0
[search]
population_size = 4
tournament_size = 2
budget = {budget}
seed = {seed}
"""
FAULTS = ("driver-kill", "driver-term", "worker-kill", "server-kill")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An mlflow server in its own process group, restartable on the same port and store."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.proc = root, _free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}", "--default-artifact-root",
             str(self.root / "artifacts"), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _records(out: Path) -> list[dict]:
    try:
        return [e["record"] for e in ev.read(out / EVENTS) if e["type"] == "evaluated"]
    except FileNotFoundError:
        return []


def trial(index: int, args, server: Server, work: Path, rng: random.Random) -> dict:
    config = work / f"trial-{index}.toml"
    config.write_text(CONFIG.format(data=args.data, budget=args.budget, seed=index))
    out, experiment = work / f"trial-{index}", f"faults-{index}-{os.getpid()}"
    env = os.environ | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    faults = rng.sample(FAULTS, k=min(args.faults, len(FAULTS)))
    stats = {"faults": [], "lost": 0, "orphans": 0, "exits": []}
    starts = 0
    while True:
        if not server.up:
            server.start()
        first = not (out / EVENTS).exists()
        cmd = [sys.executable, "-m", "evonorm_cli", "search", "--tracking-uri", server.uri, "--experiment",
               experiment] + (["--config", str(config), "--out", str(out), "--executor", "process", "--workers",
                               "2"] if first else ["--resume", str(out)])
        driver = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        starts += 1
        done = len(_records(out))
        fault = faults.pop() if faults and done < args.budget else None
        at = rng.randrange(done, args.budget) if fault else None
        children: set[int] = set()
        injected = False
        while driver.poll() is None:
            children |= _children(driver.pid)
            if fault and not injected and len(_records(out)) >= at:
                before = _records(out)
                injected = True
                if fault == "driver-kill":
                    driver.kill()
                elif fault == "driver-term":
                    driver.send_signal(signal.SIGTERM)
                elif fault == "worker-kill":
                    workers = [p for p in _children(driver.pid) if _alive(p) and _is_worker(p)]
                    if workers:
                        os.kill(rng.choice(sorted(workers)), signal.SIGKILL)
                else:
                    server.kill()
                    time.sleep(rng.uniform(2, 8))
                    server.start()
                stats["faults"].append(f"{fault}@{len(before)}")
            time.sleep(0.2)
        _, stderr = driver.communicate()
        stats["exits"].append(driver.returncode)
        time.sleep(5)
        stats["orphans"] += sum(_alive(p) for p in children)
        if injected:
            after = _records(out)
            stats["lost"] += sum(1 for r in before if r not in after)
        if driver.returncode == 0 and len(_records(out)) >= args.budget and "not yet in MLflow" not in stderr:
            break
        if starts > args.faults + 3:
            raise RuntimeError(f"trial {index}: the search did not finish after {starts} starts: {stderr[-500:]}")
    records = _records(out)
    ordinals = [r["ordinal"] for r in records]
    final_keys = [r["key"] for r in records if not is_transient(r["status"], r["stage"])]
    stats["repeated"] = (len(ordinals) - len(set(ordinals))) + (len(final_keys) - len(set(final_keys)))
    stats["evaluated"] = len(records)
    run_id = next(e["run_id"] for e in ev.read(out / EVENTS) if e["type"] == "tracked")
    tracked = Tracker(server.uri, experiment).history(run_id)
    stats["mlflow_equal"] = [(r.ordinal, r.key) for r in tracked] == [(r["ordinal"], r["key"]) for r in records]
    stats["starts"] = starts
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10"))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--faults", type=int, default=2, help="faults injected per trial (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="working directory (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="evonorm-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    server = Server(work)
    totals = {"lost": 0, "repeated": 0, "mlflow_differs": 0, "orphans": 0}
    start = time.time()
    try:
        for i in range(args.trials):
            s = trial(i, args, server, work, rng)
            totals["lost"] += s["lost"]
            totals["repeated"] += s["repeated"]
            totals["mlflow_differs"] += not s["mlflow_equal"]
            totals["orphans"] += s["orphans"]
            print(f"trial {i}: faults {', '.join(s['faults']) or 'none fired'}; starts {s['starts']}, exits "
                  f"{s['exits']}; evaluated {s['evaluated']}; lost {s['lost']}, repeated {s['repeated']}, "
                  f"MLflow equal to the log {s['mlflow_equal']}, orphans {s['orphans']}", flush=True)
    finally:
        server.kill()
    print(json.dumps({"trials": args.trials, "seconds": round(time.time() - start), **totals}))
    print(f"over {args.trials} trials: evaluations lost {totals['lost']}, repeated {totals['repeated']}, "
          f"searches whose MLflow runs differ from the log {totals['mlflow_differs']}, orphaned processes "
          f"{totals['orphans']}")
    return 0 if not any(totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
