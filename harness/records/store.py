"""Trial records: one JSON line per finished trial, the source of truth of a study.

``runs/<study>/trials.jsonl`` is appended under an exclusive file lock with one
``write`` of one line followed by ``fsync``, so concurrent workers never interleave. A
writer killed mid-line leaves a torn last line; the next append (and every resume, see
:func:`repair_torn_tail`) finds that the file does not end in a newline, moves the torn
bytes to ``trials.jsonl.torn`` and cuts them off under the same lock, so the next record
starts on a line of its own. A write that fails (disk full, read-only, I/O error) is cut
back to where it began and raised as :class:`RecordWriteError`: earlier records stay
intact and the run stops (a record we cannot keep is not a result).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_VERSION = 1
TORN_SUFFIX = ".torn"


class RecordWriteError(Exception):
    """Our own record could not be written (ENOSPC, EROFS, EIO...): one line, the run stops."""


def _write_error(path: Path, error: OSError) -> RecordWriteError:
    reason = error.strerror or str(error) or type(error).__name__
    return RecordWriteError(f"cannot write records to {path}: {reason}")


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


def first_objective(record: dict[str, Any]) -> float | None:
    """A record's (first) objective as a finite float, else ``None``.

    Example:
        >>> first_objective({"objective": [0.5, 3]}), first_objective({"objective": None})
        (0.5, None)
    """
    objective = record.get("objective")
    value = objective[0] if isinstance(objective, list) and objective else objective
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def best_complete_record(
    records: list[dict[str, Any]], maximize: bool = True
) -> dict[str, Any] | None:
    """The COMPLETE record with the best (first) objective, or ``None``. Ties go to the
    smaller circuit where a second objective is its size, then to the earlier trial (as
    Optuna's ``best_trial``). One rule for held-out runs, reports and comparisons.

    Example:
        >>> rows = [{"trial": i, "state": "COMPLETE", "objective": v}
        ...         for i, v in enumerate([0.2, 0.9, 0.9, None])]
        >>> best_complete_record(rows)["trial"], best_complete_record(rows, False)["trial"]
        (1, 0)
        >>> pairs = [{"trial": i, "state": "COMPLETE", "objective": v}
        ...          for i, v in enumerate([[0.0, 9], [0.0, 2], [0.1, 1]])]
        >>> best_complete_record(pairs, maximize=False)["trial"]
        1
    """
    ranked = [r for r in records if r.get("state") == "COMPLETE" and first_objective(r) is not None]
    if not ranked:
        return None
    sign = 1.0 if maximize else -1.0

    def size(record: dict[str, Any]) -> float:
        objective = record["objective"]
        return float(objective[1]) if isinstance(objective, list) and len(objective) > 1 else 0.0

    return max(ranked, key=lambda r: (sign * first_objective(r), -size(r), -r["trial"]))


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
    name = record.get("method") or record["algorithm"]
    return f"{name} ({mode})" if mode else str(name)


def append_record(path: Path | str, record: TrialRecord, if_absent: bool = False) -> bool:
    """Append one record as one line, atomically with respect to other writers; a torn
    tail left by a killed writer is moved aside first (see the module docstring). With
    ``if_absent``, a record of the same trial number already there is kept instead.
    Returns whether the line was written.

    Raises:
        RecordWriteError: The line could not be written; the file is as it was before.
    """
    path = Path(path)
    line = (record.to_json() + "\n").encode()
    with _locked(path) as fd:
        _announce(path, _repair(fd, path))
        if if_absent and any(r.get("trial") == record.trial for r in _iter_records(path)):
            return False
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)  # no half record left behind
            raise _write_error(path, error) from None
    return True


def _announce(path: Path, torn: int) -> None:
    if torn:
        from harness.util.notices import notice

        notice(
            f"{path} ended in a torn line ({torn} bytes, a writer killed mid-record): "
            f"moved to {path.name}{TORN_SUFFIX}"
        )


def repair_torn_tail(path: Path | str) -> int:
    """Move a torn last line (no final newline) to ``<path>.torn``; return its bytes.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> _ = path.write_text('{"trial": 0}\\n{"tri')
        >>> torn = path.parent / "trials.jsonl.torn"
        >>> repair_torn_tail(path), path.read_text(), torn.read_text()
        (5, '{"trial": 0}\\n', '{"tri\\n')
    """
    path = Path(path)
    if not path.exists():
        return 0
    with _locked(path) as fd:
        torn = _repair(fd, path)
    _announce(path, torn)
    return torn


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _repair(fd: int, path: Path) -> int:
    """Under the lock: cut a torn tail off, keeping its bytes in ``<path>.torn``."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    while end > 0:  # the last newline, read backwards in blocks
        begin = max(0, end - 65536)
        block = os.pread(fd, end - begin, begin)
        cut = block.rfind(b"\n")
        if cut >= 0:
            end = begin + cut + 1
            break
        end = begin
    torn = os.pread(fd, size - end, end)
    aside = path.with_name(path.name + TORN_SUFFIX)
    try:
        with aside.open("ab") as handle:
            handle.write(torn + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.ftruncate(fd, end)
        os.fsync(fd)
    except OSError as error:
        raise _write_error(aside, error) from None
    return len(torn)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_records(path: Path | str) -> list[dict[str, Any]]:
    """Every complete record in a ``trials.jsonl``; a torn last line is skipped.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> append_record(path, TrialRecord("s", 0, "COMPLETE", "sp", "t", None, {}, 0))
        True
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
