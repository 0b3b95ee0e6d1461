"""Weights & Biases mirrors of trial records, and a reader for offline runs.

W&B is derived from the records and never feeds back: a study's ``trials.jsonl`` stays
the source of truth, and any W&B failure is turned into one warning so that it can never
fail a trial. ``wandb`` and ``plotly`` are imported only inside the logging functions,
and not at all in ``disabled`` mode.

Offline runs land in ``<wandb_dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb``, with
no ``wandb-summary.json``. That file is a 7-byte header followed by LevelDB-log framed
chunks in 32 KiB blocks (header: CRC-32 of type byte and payload, length, type), whose
reassembled payloads are ``wandb_internal_pb2.Record`` messages; :func:`read_offline_run`
decodes it back into config, summary, history and run metadata.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.configs.study import StudyConfig
from harness.records.schema import TrialRecord
from harness.study.wandb_checks import home_environment, not_writable, server_unreachable, warn_once

_BLOCK = 32 * 1024
_CHUNK_HEADER = struct.Struct("<IHB")  # crc32, length, type
_FILE_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_ENV_KEYS = ("WANDB_MODE", "WANDB_SILENT", "WANDB_CONSOLE")


def log_trial(record: TrialRecord, config: StudyConfig, wandb_dir: Path | str) -> str | None:
    """Mirror one trial record into its own W&B run.

    The run is grouped by study, tagged with algorithm, task, ground truth and state,
    and carries the params as config, the scores as summary, the per-epoch curves as
    history (``step`` = epoch) and each ground truth's score-based ROC curve as a plotly
    figure (``roc/<ground truth>``).

    Args:
        record: The finished trial.
        config: The study config; ``config.wandb`` gives mode, project and entity.
        wandb_dir: Where W&B writes (created if missing).

    Returns:
        The run's id, or ``None`` when disabled or when W&B failed (one warning).

    Example:
        >>> config = StudyConfig.model_validate(
        ...     {"name": "s", "task": "tracr-reverse", "wandb": {"mode": "disabled"}})
        >>> record = TrialRecord("s", 0, "COMPLETE", "sp", "tracr-reverse", None, {}, 0)
        >>> log_trial(record, config, "unused") is None
        True
    """
    if config.wandb.mode == "disabled":
        return None
    init = functools.partial(_trial_init, record, config)
    fill = functools.partial(_fill_trial, record=record)
    return _guarded(f"trial {record.trial}", config, wandb_dir, init, fill)


def log_study_summary(
    config: StudyConfig, records: list[dict[str, Any]], wandb_dir: Path | str
) -> str | None:
    """One W&B run holding a table of a study's trials and its best trial.

    Args:
        config: The study config.
        records: Trial records as dicts (what :func:`harness.records.store.read_records` gives).
        wandb_dir: Where W&B writes (created if missing).

    Returns:
        The run's id, or ``None`` when disabled or when W&B failed (one warning).
    """
    if config.wandb.mode == "disabled":
        return None
    init = functools.partial(_summary_init, config, records)
    fill = functools.partial(_fill_summary, config=config, records=records)
    return _guarded("study summary", config, wandb_dir, init, fill)


def find_offline_runs(wandb_dir: Path | str) -> list[Path]:
    """The offline run directories under ``wandb_dir`` (or its ``wandb/``), oldest first.

    Example:
        >>> import tempfile
        >>> find_offline_runs(tempfile.mkdtemp())
        []
    """
    root = Path(wandb_dir)
    found = {p for base in (root, root / "wandb") for p in base.glob("offline-run-*") if p.is_dir()}
    return sorted(found, key=lambda p: p.name)


def read_offline_run(run_dir: Path | str) -> dict[str, Any]:
    """Decode an offline run's ``run-*.wandb`` file.

    Args:
        run_dir: An ``offline-run-*`` directory (or the ``.wandb`` file itself).

    Returns:
        ``{"config": {...}, "summary": {...}, "history": [row, ...], "run": {"id",
        "group", "job_type", "tags", "name", "project"}}`` with JSON-decoded values;
        keys W&B splits into ``nested_key`` paths come back as nested dicts (a media
        entry such as ``summary["roc/x"]`` is a dict with ``_type`` and ``path``).
        W&B's own ``_wandb`` entries are left out of config and summary.
        ``"exit_code"`` is the run's exit code, or ``None`` when the file has no exit
        record (a run still being written, or killed).

    Raises:
        FileNotFoundError: No ``run-*.wandb`` file there.
        ValueError: The file does not start with the W&B header.
    """
    from wandb.proto import wandb_internal_pb2

    path = Path(run_dir)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise FileNotFoundError(f"no run-*.wandb file in {path}")
        path = files[0]
    result: dict[str, Any] = {
        "config": {},
        "summary": {},
        "history": [],
        "run": {},
        "exit_code": None,
    }
    for payload in _read_frames(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            result["run"] = {
                "id": run.run_id,
                "group": run.run_group,
                "job_type": run.job_type,
                "tags": list(run.tags),
                "name": run.display_name,
                "project": run.project,
            }
            _apply(result["config"], run.config.update)
            _apply(result["summary"], run.summary.update)
        elif kind == "config":
            _apply(result["config"], record.config.update, record.config.remove)
        elif kind == "summary":
            _apply(result["summary"], record.summary.update, record.summary.remove)
        elif kind == "exit":
            result["exit_code"] = record.exit.exit_code
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply(row, record.history.item)
            result["history"].append(row)
    for section in ("config", "summary"):
        result[section].pop("_wandb", None)
    return result


# --- logging -------------------------------------------------------------------------


def _trial_init(record: TrialRecord, config: StudyConfig) -> dict[str, Any]:
    tags = [record.algorithm, record.task, record.ground_truth, record.state]
    return {
        "group": config.name,
        "job_type": "trial",
        "name": f"{config.name}-trial-{record.trial}",
        "tags": [str(t) for t in tags if t is not None],
        "config": {
            **record.params,
            "seed": record.seed,
            "trial": record.trial,
            "config_hash": record.config_hash,
        },
    }


def _fill_trial(run: Any, record: TrialRecord) -> None:
    import wandb

    loss = record.history.get("epoch_loss") or []
    faith = record.history.get("epoch_faithfulness") or []
    n_epochs = max(len(loss), len(faith))
    for epoch in range(n_epochs):
        row = {}
        if epoch < len(loss):
            row["epoch/loss"] = loss[epoch]
        if epoch < len(faith):
            row["epoch/faithfulness"] = faith[epoch]
        run.log(row, step=epoch)
    figures = {
        f"roc/{gt}": wandb.Plotly(_roc_figure(gt, curve, record.auc.get(gt, {})))
        for gt, curve in record.roc.items()
    }
    if figures:
        run.log(figures, step=n_epochs)  # its own step, after the last epoch
    run.summary.update(_trial_summary(record))


def _trial_summary(record: TrialRecord) -> dict[str, Any]:
    summary: dict[str, Any] = {"state": record.state, "objective": record.objective}
    for gt, by_convention in record.auc.items():
        for convention, value in by_convention.items():
            summary[f"auc/{gt}/{convention}"] = value
    for measure, value in record.faithfulness.items():
        summary[f"faithfulness/{measure}"] = value
    summary.update(
        circuit_size=record.circuit_size,
        n_edges_total=record.n_edges_total,
        seconds=record.seconds,
        device=record.device,
        fail_reason=record.fail_reason,
    )
    return summary


def _roc_figure(gt: str, curve: Mapping[str, list[float]], aucs: Mapping[str, float]) -> Any:
    import plotly.graph_objects as go

    auc = aucs.get("score-trapezoid")
    label = f"{gt} (AUC {auc:.3f})" if isinstance(auc, (int, float)) else gt
    figure = go.Figure()
    figure.add_scatter(x=list(curve["fpr"]), y=list(curve["tpr"]), mode="lines", name=label)
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "gray"}
    )
    figure.update_layout(
        title=f"ROC against {gt} (score-based)",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
    )
    return figure


def _summary_init(config: StudyConfig, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "group": config.name,
        "job_type": "study-summary",
        "name": f"{config.name}-summary",
        "tags": [config.algorithm, config.task_label],
        "config": {"config_hash": config.config_hash(), "n_trials": len(records)},
    }


def _fill_summary(run: Any, config: StudyConfig, records: list[dict[str, Any]]) -> None:
    import wandb

    gts = sorted({gt for r in records for gt in (r.get("auc") or {})})
    columns = ["number", "state", "params", "objective"]
    columns += [f"auc/{gt}" for gt in gts]
    columns += ["faithfulness/kl_div", "circuit_size", "seconds", "fail_reason"]
    rows = []
    for r in records:
        auc = r.get("auc") or {}
        objective = r.get("objective")
        rows.append(
            [
                r.get("trial"),
                r.get("state"),
                json.dumps(r.get("params", {}), sort_keys=True),
                json.dumps(objective) if isinstance(objective, list) else objective,
                *[(auc.get(gt) or {}).get("score-trapezoid") for gt in gts],
                (r.get("faithfulness") or {}).get("kl_div"),
                r.get("circuit_size"),
                r.get("seconds"),
                r.get("fail_reason"),
            ]
        )
    run.log({"trials": wandb.Table(columns=columns, data=rows, allow_mixed_types=True)})
    best = _best(config, records)
    run.summary.update(
        {
            "n_trials": len(records),
            "n_complete": sum(r.get("state") == "COMPLETE" for r in records),
            "best/trial": None if best is None else best.get("trial"),
            "best/objective": None if best is None else best.get("objective"),
        }
    )


def _best(config: StudyConfig, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best COMPLETE record by the (first) objective, in the study's direction."""

    def first(r: dict[str, Any]) -> float:
        value = r["objective"]
        return float(value[0] if isinstance(value, list) else value)

    done = [r for r in records if r.get("state") == "COMPLETE" and r.get("objective") is not None]
    if not done:
        return None
    maximise = config.objective.maximize
    return (max if maximise else min)(done, key=first)


def _guarded(
    what: str,
    config: StudyConfig,
    wandb_dir: Path | str,
    init: Callable[[], dict[str, Any]],
    fill: Callable[[Any], None],
) -> str | None:
    """Open a run, ``fill`` it and always finish it; any failure becomes one warning. The
    machine is checked first (:mod:`harness.study.wandb_checks`)."""
    failed = False
    directory = Path(wandb_dir)
    reason = not_writable(directory)
    if reason is not None:  # W&B would write under the system's temporary folder instead
        warn_once(
            f"dir:{directory}",
            f"W&B folder {directory} is not writable ({reason}): W&B logging is off "
            "(the records are kept)",
        )
        return None
    mode = config.wandb.mode
    if mode == "online" and (reason := server_unreachable()) is not None:
        warn_once(
            "offline",
            f"W&B server unreachable ({reason}): logging offline under {directory}; "
            "`wandb sync` it later",
        )
        mode = "offline"
    try:
        with _wandb_env(mode, home_environment(directory)):
            import wandb

            run = wandb.init(
                project=config.wandb.project,
                entity=config.wandb.entity,
                dir=str(directory),
                mode=mode,
                reinit="create_new",
                settings=_settings(wandb),
                **init(),
            )
            try:
                fill(run)
            except BaseException:
                failed = True
                raise
            finally:
                run_file = getattr(run.settings, "sync_file", None)
                with contextlib.suppress(Exception):
                    run.finish(exit_code=1 if failed else 0)
                if mode == "offline" and run_file:
                    _await_exit_record(Path(run_file))
            return run.id
    except Exception as error:
        message = type(error).__name__
        if str(error).strip():
            message += f": {str(error).strip().splitlines()[0]}"
        warnings.warn(
            f"W&B logging of {what} failed, continuing without it: {message}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _await_exit_record(path: Path, timeout: float = 5.0) -> bool:
    """Wait until the run file ends with its exit record.

    ``finish()`` returns before W&B's core process has flushed the offline file (the
    tail lands a few milliseconds later), so readers, or a worker about to exit, could
    see a truncated run without this.
    """
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            frames = list(_read_frames(path.read_bytes()))
            if frames:
                last = wandb_internal_pb2.Record()
                last.ParseFromString(frames[-1])
                if last.WhichOneof("record_type") == "exit":
                    return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _settings(wandb: Any) -> Any:
    """Quiet settings: nothing printed, no console capture, git, code or system stats."""
    quiet = {
        "silent": True,
        "console": "off",
        "disable_git": True,
        "disable_code": True,
        "save_code": False,
    }
    try:
        return wandb.Settings(**quiet, x_disable_stats=True, x_disable_meta=True)
    except Exception:  # experimental settings renamed in another version
        return wandb.Settings(**quiet)


@contextlib.contextmanager
def _wandb_env(mode: str, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """Set W&B's mode and silence (and ``extra``) in the environment for the call only."""
    extra = dict(extra or {})
    saved = {key: os.environ.get(key) for key in (*_ENV_KEYS, *extra)}
    os.environ.update(WANDB_MODE=mode, WANDB_SILENT="true", WANDB_CONSOLE="off", **extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- reading ---------------------------------------------------------------------------


def _read_frames(data: bytes) -> Iterator[bytes]:
    """Reassembled record payloads of a LevelDB-log framed ``.wandb`` file.

    A chunk never crosses a 32 KiB block; a block's tail shorter than a chunk header is
    zero padding. A chunk with a bad checksum, or a torn final chunk, ends the stream.

    Example:
        >>> payload = b"hello"
        >>> chunk = struct.pack("<IHB", zlib.crc32(bytes([1]) + payload), 5, 1) + payload
        >>> list(_read_frames(b":W&B" + bytes(3) + chunk))
        [b'hello']
    """
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (bad header)")
    pos, parts = _FILE_HEADER, []
    while pos + _CHUNK_HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER.size:
            pos += left
            continue
        crc, length, kind = _CHUNK_HEADER.unpack_from(data, pos)
        start, pos = pos + _CHUNK_HEADER.size, pos + _CHUNK_HEADER.size + length
        if kind == 0 and length == 0:  # zero padding
            continue
        payload = data[start:pos]
        if pos > len(data) or zlib.crc32(bytes([kind]) + payload) != crc:
            return  # torn or corrupt tail
        if kind in (_FULL, _FIRST):
            parts = [payload]
        elif kind in (_MIDDLE, _LAST) and parts:
            parts.append(payload)
        if kind in (_FULL, _LAST) and parts:
            yield b"".join(parts)
            parts = []


def _apply(target: dict[str, Any], items: Any, removed: Any = ()) -> None:
    """Set ``key`` / ``nested_key`` items (JSON values) into ``target``; drop removed ones."""
    for item in items:
        keys = list(item.nested_key) or [item.key]
        node = target
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[keys[-1]] = json.loads(item.value_json) if item.value_json else None
    for item in removed:
        keys = list(item.nested_key) or [item.key]
        node = target
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node.get(key), dict) else {}
        node.pop(keys[-1], None)
