"""Workers on PostgreSQL directly and through ``harness storage-proxy``, side by side.

For each way in turn (same study config, same machine, same database), a fresh study of
``--trials`` SP trials on tracr-reverse (``studies/sp-tracr-reverse.yaml`` with 4 to 8 epochs
a trial, no pruner, on the CPU) runs in ``--workers`` ``harness worker`` processes;
once ``--kill-after`` trials are recorded and every worker is running a trial, one worker
is killed with SIGKILL (mid-trial). Printed, one JSON line per way: the wall time, the
trials per minute (from the first record to the last, so the workers' start-up is left
out), the most database connections the study's workers held at once (``pg_stat_activity``),
and the checks: every slot finished once, the killed worker's trial failed with its reason
and ran again, and how long after the kill its trial was failed (a trial goes stale
after three heartbeats, ``--heartbeat`` seconds each).

    PYTHONPATH=. python bench/storage_proxy.py --postgres postgresql://postgres@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import yaml

from harness.records.store import read_records
from harness.study.storages import open_storage
from harness.study.trials import retried_trial_number

SHIPPED = Path(__file__).resolve().parents[1] / "studies" / "sp-tracr-reverse.yaml"
QUICK = {  # the shipped study, with trials of a few seconds on a CPU and nothing else
    "task_options": {"device": "cpu"},
    "search_space": {"epochs": {"type": "int", "low": 4, "high": 8}},
    "enqueue": [],
    "sampler": {"constant_liar": True},
    "pruner": {"type": "none"},
    "wandb": {"mode": "disabled"},
    "heldout": {"seeds": 0},
}


def study_config(name: str, n_trials: int, epochs: tuple[int, int] = (4, 8)) -> dict:
    """``studies/sp-tracr-reverse.yaml`` with :data:`QUICK` merged in, epochs in ``epochs``."""
    data = yaml.safe_load(SHIPPED.read_text())
    for key, value in QUICK.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    data["search_space"]["epochs"] = {"type": "int", "low": epochs[0], "high": epochs[1]}
    return {**data, "name": name, "n_trials": n_trials}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connections(postgres: str) -> int:
    """Client connections to the study's database now (this script's probe left out)."""
    import psycopg2

    with psycopg2.connect(postgres) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def all_mid_trial(storage, name: str, workers: list[subprocess.Popen], records: Path) -> bool:
    """Whether as many trials train (an epoch reported, no record yet) as workers live: each
    is mid-trial. A RUNNING trial whose record is written is between its record and Optuna's
    tell: its worker killed there leaves a trial settled from its record, not run again."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    recorded = {r["trial"] for r in read_records(records)} if records.exists() else set()
    training = [t for t in running if t.intermediate_values and t.number not in recorded]
    return len(training) == sum(w.poll() is None for w in workers)


def run(way: str, args: argparse.Namespace, tmp: Path, env: dict) -> dict:
    name = f"bench-{way}-{uuid.uuid4().hex[:6]}"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study_config(name, args.trials, tuple(args.epochs))))
    runs = tmp / "runs"
    records_file = runs / name / "trials.jsonl"
    proxy, url = None, args.postgres
    if way == "proxy":
        port = free_port()
        serve = ["storage-proxy", "--storage", args.postgres, "--port", str(port)]
        proxy = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", *serve],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        print(proxy.stdout.readline().strip(), file=sys.stderr)
        url = f"grpc://127.0.0.1:{port}"
    watch = open_storage(args.postgres)  # direct, before the count: its connections are base
    base = connections(args.postgres)
    command = ["worker", str(path), "--storage", url, "--runs-dir", str(runs), "--no-progress"]
    start = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "harness.cli", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.workers)
    ]
    seen: list[tuple[float, int]] = []
    most, killed, killed_at = 0, None, datetime.datetime.now()
    while any(w.poll() is None for w in workers):
        count = len(read_records(records_file)) if records_file.exists() else 0
        if not seen or count != seen[-1][1]:
            seen.append((time.monotonic(), count))
        most = max(most, connections(args.postgres) - base)
        if (
            killed is None
            and count >= args.kill_after
            and all_mid_trial(watch, name, workers, records_file)
        ):
            killed = workers[0].pid
            workers[0].send_signal(signal.SIGKILL)
            killed_at = datetime.datetime.now()
        time.sleep(0.2)
    wall = time.monotonic() - start
    errors = [w.stderr.read().strip() for w in workers[1:] if w.returncode != 0]
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    if proxy is not None:
        proxy.terminate()
        proxy.wait()
    records = read_records(records_file)
    numbers = [r["trial"] for r in records]
    dead = [t for t in trials if "worker died" in str(t.user_attrs.get("fail_reason"))]
    retried = {retried_trial_number(t): t for t in trials}
    first = next(t for t, n in seen if n >= 1)
    last = seen[-1][0]
    return {
        "way": way,
        "trials": len(numbers),
        "each_once": len(numbers) == len(set(numbers)) == args.trials,
        "trial_numbers": sorted(numbers),
        "killed_trials": [t.number for t in dead],
        "killed_records": [  # a dead trial has none, unless settled from it
            [r["trial"], r["state"], r.get("fail_reason")]
            for r in records
            if r["trial"] in {t.number for t in dead}
        ],
        "reasons": sorted({t.user_attrs["fail_reason"] for t in dead}),
        "retries_done": [
            retried[t.number].number
            for t in dead
            if t.number in retried and retried[t.number].state.name == "COMPLETE"
        ],
        "retries_same_setting": all(
            retried[t.number].params == t.params
            and retried[t.number].user_attrs["seed"] == t.user_attrs["seed"]
            for t in dead
            if t.number in retried
        ),
        "wall_s": round(wall, 1),
        "trials_per_min": round(60 * (len(numbers) - 1) / (last - first), 1),
        "failed_s_after_kill": [
            round((t.datetime_complete - killed_at).total_seconds(), 1) for t in dead
        ],
        "max_db_connections": most,
        "worker_errors": errors,
        "killed_pid": killed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("HARNESS_TEST_POSTGRES_URL"))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-after", type=int, default=8)
    parser.add_argument(
        "--epochs", type=int, nargs=2, default=[4, 8], metavar=("LOW", "HIGH"),
        help="SP epochs a trial (longer trials: more moments when every worker trains)",
    )  # fmt: skip
    parser.add_argument("--heartbeat", default="2", help="HARNESS_HEARTBEAT_SECONDS")
    parser.add_argument("--ways", default="direct,proxy")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or HARNESS_TEST_POSTGRES_URL)")
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": root,
        "OMP_NUM_THREADS": "1",
        "HARNESS_HEARTBEAT_SECONDS": args.heartbeat,
    }
    os.environ["HARNESS_HEARTBEAT_SECONDS"] = args.heartbeat
    with tempfile.TemporaryDirectory() as tmp:
        for way in args.ways.split(","):
            print(json.dumps(run(way, args, Path(tmp), env)), flush=True)


if __name__ == "__main__":
    main()
