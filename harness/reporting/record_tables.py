"""Tables of records, one row each: every trial or run of a source, and the best trial of
each study with its parameters."""

from __future__ import annotations

from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.records.selection import first_objective
from harness.reporting.conventions import CONVENTION_NOTES, CONVENTIONS
from harness.reporting.figures import record_auc
from harness.reporting.sources import Source, best_trial
from harness.reporting.tables import Table, format_cell, slug


def best_params_table(sources: list[Source]) -> Table | None:
    """The best trial of each study: its objective, AUCs and every parameter."""
    import pandas as pd

    rows = []
    for source in sources:
        best = best_trial(source) if source.kind == "study" else None
        if best is None:
            continue
        row: dict[str, Any] = {
            "study": source.name,
            "task": best["task"],
            "trial": best["trial"],
            f"objective ({source.objective_name})": first_objective(best),
        }
        for gt, aucs in best["auc"].items():
            row[f"AUC {gt} ({SCORE_TRAPEZOID})"] = aucs.get(SCORE_TRAPEZOID)
        row.update(best["params"])
        rows.append(row)
    if not rows:
        return None
    data = pd.DataFrame(rows)
    caption = (
        "Best trial of each study, by its objective; AUC convention "
        f"{SCORE_TRAPEZOID} ({CONVENTION_NOTES[SCORE_TRAPEZOID]})."
    )
    return Table("best-params", caption, data.map(format_cell), None, data)


def trials_table(source: Source) -> Table:
    """Every trial (study) or run (comparison) of a source, one row each."""
    import pandas as pd

    varying = varying_params(source.records) if source.kind == "study" else []
    gts = list(dict.fromkeys(gt for r in source.records for gt in r.get("auc", {})))
    rows = []
    for r in sorted(source.records, key=lambda r: r["trial"]):
        row: dict[str, Any] = {"trial": r["trial"], "state": r["state"]}
        if source.kind == "compare":
            row.update(
                method=r["algorithm"],
                task=r["task"],
                ablation=r["params"].get("ablation"),
                seed=r["seed"],
            )
        else:
            row["objective"] = first_objective(r)
        for gt in gts:
            for convention in CONVENTIONS:
                row[f"AUC {gt} ({convention})"] = record_auc(r, gt, convention)
        faith = r.get("faithfulness") or {}
        if faith:
            measure = "kl_div" if "correct_percent" in faith else "mse"
            row[f"{measure} top-{faith.get('n_edges')}"] = faith.get(measure)
        row["circuit edges"] = r.get("circuit_size")
        row["seconds"] = r.get("seconds")
        row.update({k: r["params"].get(k) for k in varying})
        if r["state"] == "FAIL":
            row["fail reason"] = r.get("fail_reason")
        rows.append(row)
    data = pd.DataFrame(rows)
    conventions = " and ".join(f"{c} ({CONVENTION_NOTES[c]})" for c in CONVENTIONS)
    what = "runs" if source.kind == "compare" else "trials"
    caption = f"All {what} of {source.name}; AUC conventions {conventions}."
    return Table(f"trials-{slug(source.name)}", caption, data.map(format_cell), None, data)


def varying_params(records: list[dict[str, Any]]) -> list[str]:
    """The parameters whose value is not the same in every record, in order of appearance.

    Example:
        >>> varying_params([{"params": {"a": 1, "b": 2}}, {"params": {"a": 1, "b": 3}}])
        ['b']
    """
    names = list(dict.fromkeys(k for r in records for k in r["params"]))
    return [k for k in names if len({repr(r["params"].get(k)) for r in records}) > 1]
