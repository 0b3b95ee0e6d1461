"""Every AUC of a report's method runs, with its bootstrap interval, and the tables of them.

One row of :func:`auc_frame` per method, task, ablation, ground truth and convention (it
is ``tables/auc.csv``); :func:`auc_tables` lays it out per ground truth and convention.
"""

from __future__ import annotations

import math

from harness.evaluation.stats import bootstrap_interval
from harness.reporting.conventions import CONVENTION_NOTES, CONVENTIONS
from harness.reporting.figures import MethodRuns
from harness.reporting.tables import Table


def auc_frame(runs: list[MethodRuns], samples: int = 10000):
    """Every AUC as one row: method, task, ablation, ground truth, convention, seeds, mean,
    the 95% bootstrap interval, and whether it is the best of its (task, ablation, ground
    truth, convention) group."""
    import pandas as pd

    rows = []
    for run in runs:
        gts = list(dict.fromkeys(gt for r in run.records for gt in r.get("auc", {})))
        for gt in gts:
            for convention in CONVENTIONS:
                values = [
                    r["auc"][gt][convention]
                    for r in run.records
                    if convention in r["auc"].get(gt, {})
                ]
                values = [v for v in values if v is not None and math.isfinite(v)]
                if not values:
                    continue
                low, high = bootstrap_interval(values, samples)
                rows.append(
                    {
                        "method": run.label,
                        "task": run.task,
                        "ablation": run.ablation,
                        "ground truth": gt,
                        "convention": convention,
                        "seeds": len(values),
                        "mean": sum(values) / len(values),
                        "ci low": low,
                        "ci high": high,
                    }
                )
    frame = pd.DataFrame(
        rows,
        columns=[
            "method",
            "task",
            "ablation",
            "ground truth",
            "convention",
            "seeds",
            "mean",
            "ci low",
            "ci high",
        ],
    )
    group = ["task", "ablation", "ground truth", "convention"]
    frame["best"] = frame["mean"] >= frame.groupby(group)["mean"].transform("max") - 1e-12
    return frame


def auc_tables(frame) -> list[Table]:
    """One table per ground truth and convention: a row per method, a column per task
    and ablation, ``mean [low, high]`` in each cell, the best per column in bold."""
    import pandas as pd

    tables = []
    methods = list(dict.fromkeys(frame["method"]))
    for (gt, convention), part in frame.groupby(["ground truth", "convention"], sort=False):
        columns = list(dict.fromkeys(zip(part["task"], part["ablation"], strict=True)))
        index = pd.MultiIndex.from_tuples(columns, names=["task", "ablation"])
        rows = [m for m in methods if m in set(part["method"])]
        cells = pd.DataFrame("–", index=rows, columns=index)
        bold = pd.DataFrame(False, index=rows, columns=index)
        for _, row in part.iterrows():
            column = (row["task"], row["ablation"])
            cells.loc[row["method"], column] = _interval(row)
            bold.loc[row["method"], column] = bool(row["best"])
        cells.index.name = bold.index.name = "method"
        caption = (
            f"AUC against ground truth {gt}, convention {convention} "
            f"({CONVENTION_NOTES[convention]}): mean over seeds [95% percentile-bootstrap "
            "interval]; best per column in bold."
        )
        if any(" tuned (" in m for m in rows):
            caption += (
                " A tuned row: the study's best settings run again on held-out seeds (never "
                "its selection value); score-based only, as one circuit per run is no sweep."
            )
        tables.append(Table(f"auc-{gt}-{convention}", caption, cells, bold, None))
    return tables


def _interval(row) -> str:
    if row["seeds"] < 2:
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} [{row['ci low']:.3f}, {row['ci high']:.3f}]"
