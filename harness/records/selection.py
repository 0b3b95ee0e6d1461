"""Choosing among records and naming them: a record's objective, the best complete record
(one rule for held-out runs, reports and comparisons), and a record's method label."""

from __future__ import annotations

import math
from typing import Any


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


def cell_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a comparison's or transfer's run one cell: method, task, ablation, seed
    and fold (a record of the same cell is a repeat, never another seed).

    Example:
        >>> cell_key({"algorithm": "eap", "task": "t", "params": {"ablation": "zero"},
        ...           "seed": 1})
        ('eap', 't', 'zero', 1, None)
    """
    method = record.get("method") or record.get("algorithm")
    ablation = (record.get("params") or {}).get("ablation")
    return method, record.get("task"), ablation, record.get("seed"), record.get("fold")


def one_per_cell(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per cell (see :func:`cell_key`): its last COMPLETE record, else its last
    one, in the order of the records kept. Two writers of one cell, or a cell rerun after
    a config change, never count twice.

    Example:
        >>> rows = [{"algorithm": "eap", "task": "t", "params": {}, "seed": 0,
        ...          "state": s, "trial": i} for i, s in enumerate(["FAIL", "COMPLETE",
        ...          "COMPLETE", "FAIL"])]
        >>> [r["trial"] for r in one_per_cell(rows)]
        [2]
    """
    kept: dict[tuple[Any, ...], int] = {}
    for i, record in enumerate(records):
        key = cell_key(record)
        old = kept.get(key)
        if old is None or record.get("state") == "COMPLETE" or records[old]["state"] != "COMPLETE":
            kept[key] = i
    return [records[i] for i in sorted(kept.values())]
