"""The record of one finished trial or run: one JSON line, the source of truth of studies,
comparisons and transfers (:mod:`harness.records.store` writes and reads them).

Example:
    >>> thin_curve([0.0, 0.25, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0], max_points=3)
    {'fpr': [0.0, 0.5, 1.0], 'tpr': [0.0, 1.0, 1.0]}
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
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
        mib: MIB's metrics (test batches, the run's ablation), each named with its
            ranking: ``{"cpr": ..., "cpr_ranking": "signed", "cmd": ...,
            "cmd_ranking": "absolute", "measure": ..., ...}`` (see
            :meth:`harness.evaluation.mib.MibResult.as_record`); empty if not computed.
        n_edges_total: Edges in the model's graph.
        history: Per-epoch loss and faithfulness (and per-step curves for SP).
        seconds: Wall time of the trial.
        peak_memory_mb: Peak memory of the algorithm's run in MiB, where measured, and
            ``peak_memory_kind`` what was measured (``cuda_max_allocated`` or
            ``process_max_rss``; see :class:`harness.evaluation.run_one.RunResult`).
        device: Where it ran.
        fail_reason: Why a FAIL trial failed (one line).
        versions: Package versions.
        git_commit: The harness's commit, if known.
        config_hash: Hash of the study config.
        retry_of: The trial number this one retries after a dead worker.
        semantics: How the algorithm read its masks, where it has several modes (SP:
            ``tree``, ``corrupt-run`` or ``restore-clean``), else ``None``.
        direction: ``maximize`` or ``minimize``: the study's (first) objective's, so that
            readers of the records alone pick its best trial the right way round.
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
    mib: dict[str, Any] = field(default_factory=dict)
    n_edges_total: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    peak_memory_kind: str | None = None
    device: str = "cpu"
    fail_reason: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    config_hash: str | None = None
    retry_of: int | None = None
    semantics: str | None = None
    direction: str | None = None
    per_task: dict[str, Any] = field(default_factory=dict)  # multi-task studies: each task's
    method: str | None = None  # a transfer's method (sp-transfer...), else the algorithm
    fold: int | None = None  # a k-fold transfer's fold
    record_version: int = RECORD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=True)


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
    root = Path(__file__).resolve().parents[2]
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
