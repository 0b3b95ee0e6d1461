"""The trained models shipped in the package: one file per program,
``harness/tasks/siit/weights/siit-<program>.pt.gz``, plain data read with
``weights_only=True`` (the tracr files' format: :mod:`harness.tasks.tracr.weight_files`).

A file holds the trained model's config and parameters, the alignment, how it was trained
(settings, steps, seconds), its metrics, its ground truths and each one's accuracy under
resample ablation of every edge outside it.

Example:
    >>> siit_path("hist").name
    'siit-hist.pt.gz'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.tasks.siit.alignment import Alignment
from harness.tasks.siit.training import SiitRun, SiitSettings
from harness.tasks.tracr.weight_files import read_payload, write_payload

SIIT_DIR = Path(__file__).resolve().parent / "weights"
FORMAT = 1


def siit_path(program: str, directory: str | os.PathLike | None = None) -> Path:
    """The file of ``program``'s trained model in ``directory`` (default: the package's)."""
    return Path(directory or SIIT_DIR) / f"siit-{program}.pt.gz"


def shipped_programs(directory: str | os.PathLike | None = None) -> list[str]:
    """The programs with a trained model in ``directory`` (default: the package's), sorted."""
    folder = Path(directory or SIIT_DIR)
    if not folder.is_dir():
        return []
    return sorted(p.name[len("siit-") : -len(".pt.gz")] for p in folder.glob("siit-*.pt.gz"))


def run_payload(
    program: str,
    run: SiitRun,
    settings: SiitSettings,
    ground_truths: dict[str, frozenset[str]],
    ablation_accuracy: dict[str, float],
) -> dict[str, Any]:
    """The plain data of a trained model's file."""
    return {
        "format": FORMAT,
        "program": program,
        "config": run.config,
        "state_dict": run.state_dict,
        "alignment": {
            "circuit": list(run.alignment.circuit),
            "outside": list(run.alignment.outside),
        },
        "settings": settings.as_dict(),
        "steps": run.steps,
        "seconds": round(run.seconds, 1),
        "metrics": json.dumps(run.metrics, sort_keys=True),
        "history": json.dumps(run.history),
        "ground_truths": {name: sorted(edges) for name, edges in ground_truths.items()},
        "ablation_accuracy": dict(ablation_accuracy),
    }


def write_siit(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a trained model's file atomically."""
    write_payload(payload, path)


def read_siit(path: str | os.PathLike) -> dict[str, Any]:
    """A trained model's file as plain data (metrics and history parsed); a one-line
    ValueError for a file of another format."""
    payload = read_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a trained-model file of format {FORMAT}")
    payload = dict(payload)
    payload["metrics"] = json.loads(payload["metrics"])
    payload["history"] = json.loads(payload["history"])
    payload["alignment"] = Alignment(
        tuple(payload["alignment"]["circuit"]), tuple(payload["alignment"]["outside"])
    )
    return payload
