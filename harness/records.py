"""Trial records: one JSON line per finished trial, the source of truth of a study.

``runs/<study>/trials.jsonl`` is appended under an exclusive file lock with one
``write`` of one line followed by ``fsync``, so concurrent workers never interleave and a
crash never leaves half a record that later readers would trust (a torn last line is
skipped with its line number reported).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_VERSION = 1


@dataclass
class TrialRecord:
    """Everything one trial produced.

    Attributes:
        study: The study's name.
        trial: Optuna's trial number.
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        algorithm: The algorithm's slug.
        task: The task's slug.
        ground_truth: The ground truth the study optimises against.
        params: Every hyperparameter the algorithm received (fixed and searched).
        seed: The trial's seed.
        objective: The value(s) told to Optuna, or ``None``.
        auc: Ground truth -> convention -> AUC.
        roc: Ground truth -> ``{"fpr": [...], "tpr": [...]}`` (score-based, thinned).
        faithfulness: Measures of the top-k circuit on the test batches, with ``n_edges``.
        circuit_size: Edges in the algorithm's own circuit (SP: masks on), if it has one.
        circuit_edges: That circuit's edges (sweep-based ROC across trials needs them).
        sweep: For sweeps (ACDC thresholds, SP λ values): each run's value and circuit size.
        sweep_roc: Ground truth -> the sweep-based ROC points (pessimistic convention).
        faithfulness_curve: Faithfulness of the top-k edges for a range of k (test batches,
            the run's ablation): ``[{"n_edges": k, "kl_div": ..., "mse": ...}, ...]``.
        n_edges_total: Edges in the model's graph.
        history: Per-epoch loss and faithfulness (and per-step curves for SP).
        seconds: Wall time of the trial.
        device: Where it ran.
        fail_reason: Why a FAIL trial failed (one line).
        versions: Package versions.
        git_commit: The harness's commit, if known.
        config_hash: Hash of the study config.
        retry_of: The trial number this one retries after a dead worker.
        semantics: How the algorithm read its masks, where it has several modes (SP:
            ``tree``, ``corrupt-run`` or ``restore-clean``), else ``None``.
    """

    study: str
    trial: int
    state: str
    algorithm: str
    task: str
    ground_truth: str | None
    params: dict[str, Any]
    seed: int
    objective: float | list[float] | None = None
    auc: dict[str, dict[str, float]] = field(default_factory=dict)
    roc: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    faithfulness: dict[str, float] = field(default_factory=dict)
    circuit_size: int | None = None
    circuit_edges: list[str] | None = None
    sweep: list[dict[str, Any]] | None = None
    sweep_roc: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    faithfulness_curve: list[dict[str, float]] = field(default_factory=list)
    n_edges_total: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    fail_reason: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    config_hash: str | None = None
    retry_of: int | None = None
    semantics: str | None = None
    record_version: int = RECORD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=True)


def method_label(record: dict[str, Any]) -> str:
    """A record's method as tables and figures name it: the algorithm, with the mode it
    read its masks in where it has several (SP), so that rows of different semantics
    never share a label. Records written before modes were recorded say ``tree`` when
    their parameters do, and nothing otherwise.

    Example:
        >>> method_label({"algorithm": "sp", "semantics": "corrupt-run", "params": {}})
        'sp (corrupt-run)'
        >>> method_label({"algorithm": "acdc", "params": {}})
        'acdc'
    """
    mode = record.get("semantics")
    if mode is None and record.get("params", {}).get("tree_optimisation") is True:
        mode = "tree"
    return f"{record['algorithm']} ({mode})" if mode else str(record["algorithm"])


def append_record(path: Path | str, record: TrialRecord) -> None:
    """Append one record as one line, atomically with respect to other writers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (record.to_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_records(path: Path | str) -> list[dict[str, Any]]:
    """Every complete record in a ``trials.jsonl``; a torn last line is skipped.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> append_record(path, TrialRecord("s", 0, "COMPLETE", "sp", "t", None, {}, 0))
        >>> [r["trial"] for r in read_records(path)]
        [0]
    """
    return list(_iter_records(Path(path)))


def _iter_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from a killed writer


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    result = {"python": platform.python_version()}
    for name in ("circuit-harness", "torch", "transformer-lens", "optuna", "numpy"):
        try:
            result[name] = version(name)
        except PackageNotFoundError:
            result[name] = "not installed"
    return result


@functools.cache
def git_commit() -> str | None:
    """The commit of the harness's source tree, or ``None`` outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def thin_curve(
    fpr: list[float], tpr: list[float], max_points: int = 1000
) -> dict[str, list[float]]:
    """At most ``max_points`` points of a ROC curve, ends kept, for storage."""
    n = len(fpr)
    if n <= max_points:
        keep = range(n)
    else:
        step = (n - 1) / (max_points - 1)
        keep = sorted({round(i * step) for i in range(max_points)})
    return {"fpr": [round(fpr[i], 6) for i in keep], "tpr": [round(tpr[i], 6) for i in keep]}
