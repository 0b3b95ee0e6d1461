"""A two-objective study's Pareto front: its first objective against circuit size.

A study with circuit size as second objective (``multi: true``) has no one best trial: its
result is the trials that no other beats on both. The report tabulates them and draws
every complete trial with the front ringed (see :func:`harness.reporting.figures.pareto_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.reporting.conventions import CONVENTION_NOTES
from harness.reporting.figures import record_auc
from harness.reporting.record_tables import varying_params
from harness.reporting.sources import Source
from harness.reporting.tables import Table, format_cell, slug


def pareto_front(points: Sequence[tuple[float, float]], maximize_first: bool) -> list[bool]:
    """Which points no other point dominates; the first value is maximised or minimised,
    the second (circuit size) minimised. Equal points are all on the front.

    Example:
        >>> pareto_front([(0.1, 5), (0.2, 3), (0.3, 3), (0.05, 9)], maximize_first=False)
        [True, True, False, True]
    """
    sign = -1.0 if maximize_first else 1.0
    keyed = [(sign * a, b) for a, b in points]  # both minimised

    def dominated(p: tuple[float, float]) -> bool:
        return any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in keyed)

    return [not dominated(p) for p in keyed]


def pareto_records(source: Source) -> list[tuple[dict[str, Any], bool]]:
    """A two-objective study's COMPLETE trials with finite objectives, each with whether
    it is on the Pareto front (empty for a one-objective study).

    Example:
        >>> s = Source("s", "study", [{"state": "COMPLETE", "objective": v, "trial": i}
        ...     for i, v in enumerate([[0.3, 2], [0.1, 5], [0.4, 6]])], direction="minimize")
        >>> [(r["trial"], on) for r, on in pareto_records(s)]
        [(0, True), (1, True), (2, False)]
    """
    complete = [
        r
        for r in source.records
        if r["state"] == "COMPLETE"
        and isinstance(r.get("objective"), list)
        and len(r["objective"]) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in r["objective"])
    ]
    front = pareto_front([tuple(r["objective"]) for r in complete], source.direction == "maximize")
    return list(zip(complete, front, strict=True))


def colour_ground_truth(source: Source, records: list[dict[str, Any]]) -> str | None:
    """The ground truth whose AUC colours a study's points: its own, else the first any
    record carries.

    Example:
        >>> colour_ground_truth(Source("s", "study", []), [{"auc": {"zero": {}}}])
        'zero'
    """
    if source.ground_truth:
        return source.ground_truth
    return next((gt for r in records for gt in r.get("auc", {})), None)


def pareto_table(source: Source) -> Table | None:
    """The Pareto-optimal trials of a two-objective study, by circuit size."""
    import pandas as pd

    scored = pareto_records(source)
    front = sorted((r for r, on in scored if on), key=lambda r: r["objective"][1])
    if not front:
        return None
    gt = colour_ground_truth(source, front)
    varying = varying_params(source.records)
    rows = []
    for r in front:
        row: dict[str, Any] = {
            "trial": r["trial"],
            source.objective_name: r["objective"][0],
            "circuit edges": r["objective"][1],
        }
        if gt is not None:
            row[f"AUC {gt} ({SCORE_TRAPEZOID})"] = record_auc(r, gt, SCORE_TRAPEZOID)
        row.update({k: r["params"].get(k) for k in varying})
        rows.append(row)
    data = pd.DataFrame(rows)
    caption = (
        f"Pareto front of {source.name}: {len(front)} of {len(scored)} complete trials that no "
        f"other trial beats on both {source.objective_name} ({source.direction[:3]}.) and "
        f"circuit size (min.); AUC convention {SCORE_TRAPEZOID} "
        f"({CONVENTION_NOTES[SCORE_TRAPEZOID]}), not an objective."
    )
    return Table(f"pareto-{slug(source.name)}", caption, data.map(format_cell), None, data)
