"""Suite-level results: methods compared over many tasks at once.

A comparison over a suite of tasks (``tasks: tracr-suite``) is read per ablation against
the ground truth made for that ablation (``resample``, or ``siit`` on trained models, for
resample ablation; ``zero`` — ``acdc-zero`` on the two tasks with official ACDC circuits —
for zero ablation; :mod:`harness.tasks.ablation_ground_truths`). For each
method, ablation and AUC convention this module gives:

- the suite mean: the mean over tasks of each task's mean over seeds, with a 95%
  two-level percentile-bootstrap interval (tasks drawn with replacement, then each drawn
  task's seeds with replacement), so the interval covers both the choice of tasks and
  seed noise;
- per task, the mean over seeds and its 95% bootstrap interval;
- headroom: on how many tasks the method's mean is below :data:`HEADROOM_AUC`, and which
  tasks separate the methods (the gap between the best and the worst non-random method).

Study rows (``<method> tuned (<study>)``: one selected trial on one task) never enter
these tables. Built from records alone, like the rest of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.evaluation.stats import bootstrap_interval
from harness.reporting.conventions import CONVENTIONS
from harness.reporting.figures import MethodRuns
from harness.reporting.tables import Table
from harness.tasks.ablation_ground_truths import ABLATION_GROUND_TRUTHS, made_for

HEADROOM_AUC = 0.95  # a method "has headroom" on a task where its mean AUC is below this
SEPARATION_GAP = 0.05  # tasks where the best and worst non-random methods differ by this


def matched_ground_truth(record: dict[str, Any], ablation: str) -> str | None:
    """The ground truth of ``record`` made for ``ablation``, or None.

    Example:
        >>> matched_ground_truth({"auc": {"resample": {}, "acdc-zero": {}}}, "zero")
        'acdc-zero'
        >>> matched_ground_truth({"auc": {"resample": {}}}, "mean") is None
        True
    """
    return made_for(ablation, record.get("auc", {}))


def matched_names(runs: Sequence[MethodRuns]) -> str:
    """Which ground truths the runs were scored against, per ablation, for a caption.

    Example:
        >>> runs = [MethodRuns("sp", "t", "resample", [{"auc": {"siit": {}}}]),
        ...         MethodRuns("sp", "u", "resample", [{"auc": {"resample": {}}}])]
        >>> matched_names(runs)
        'resample: `resample`/`siit`'
    """
    found: dict[str, set[str]] = {}
    for run in runs:
        for record in run.records:
            name = matched_ground_truth(record, run.ablation)
            if name is not None:
                found.setdefault(run.ablation, set()).add(name)
    order = {name: i for names in ABLATION_GROUND_TRUTHS.values() for i, name in enumerate(names)}
    return "; ".join(
        f"{ablation}: " + "/".join(f"`{n}`" for n in sorted(names, key=order.__getitem__))
        for ablation, names in found.items()
    )


def spans_several_tasks(runs: Sequence[MethodRuns]) -> bool:
    """Whether the comparison runs span two or more tasks (so suite tables make sense)."""
    return len({run.task for run in runs if not _is_tuned(run.label)}) >= 2


def _is_tuned(label: str) -> bool:
    return " tuned (" in label


def seed_values(
    runs: Sequence[MethodRuns], convention: str
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(method, ablation) -> task -> the AUC of every seed against the matched ground truth.

    Example:
        >>> record = {"auc": {"resample": {"score-trapezoid": 0.5}}}
        >>> seed_values([MethodRuns("sp", "t", "resample", [record])], "score-trapezoid")
        {('sp', 'resample'): {'t': [0.5]}}
    """
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in runs:
        if _is_tuned(run.label):
            continue
        values = []
        for record in run.records:
            gt = matched_ground_truth(record, run.ablation)
            value = record["auc"].get(gt, {}).get(convention) if gt else None
            if value is not None and value == value:
                values.append(float(value))
        if values:
            out.setdefault((run.label, run.ablation), {}).setdefault(run.task, []).extend(values)
    return out


def suite_interval(
    by_task: Sequence[Sequence[float]], samples: int = 10000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over tasks of per-task seed means, and its 95% two-level bootstrap interval.

    Each resample draws as many tasks as there are, with replacement, and for each drawn
    task as many seeds as it has, with replacement; the interval is the 2.5 and 97.5
    percentiles of the resampled means of means.

    Example:
        >>> suite_interval([[1.0, 1.0], [0.0]], samples=2000)[0]
        0.5
        >>> suite_interval([[0.7], [0.7, 0.7]], samples=500)
        (0.7, 0.7, 0.7)
    """
    import numpy as np

    tasks = [np.asarray(values, dtype=float) for values in by_task if len(values)]
    if not tasks:
        raise ValueError("no AUC values to summarise")
    mean = float(np.mean([t.mean() for t in tasks]))
    rng = np.random.default_rng(seed)
    task_means = np.stack(  # [n_tasks, samples]: each task's seed-resampled mean
        [rng.choice(t, size=(samples, len(t)), replace=True).mean(axis=1) for t in tasks]
    )
    drawn = rng.integers(0, len(tasks), size=(samples, len(tasks)))  # [samples, n_tasks]
    resampled = task_means[drawn, np.arange(samples)[:, None]].mean(axis=1)  # [samples]
    low, high = np.percentile(resampled, [2.5, 97.5])
    low, high = min(float(low), mean), max(float(high), mean)
    return round(mean, 12), round(low, 12), round(high, 12)


def suite_frame(
    runs: Sequence[MethodRuns], samples: int = 10000, conventions: Sequence[str] = CONVENTIONS
):
    """One row per method × ablation × convention: tasks, seeds, the suite mean and its
    interval, and the tasks below :data:`HEADROOM_AUC` (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for convention in conventions:
        for (method, ablation), by_task in seed_values(runs, convention).items():
            mean, low, high = suite_interval(list(by_task.values()), samples)
            below = sorted(t for t, v in by_task.items() if sum(v) / len(v) < HEADROOM_AUC)
            rows.append(
                {
                    "method": method,
                    "ablation": ablation,
                    "convention": convention,
                    "tasks": len(by_task),
                    "seeds": sum(len(v) for v in by_task.values()),
                    "mean": mean,
                    "ci low": low,
                    "ci high": high,
                    f"tasks below {HEADROOM_AUC}": len(below),
                    "below": ", ".join(below),
                }
            )
    return pd.DataFrame(rows)


def task_frame(
    runs: Sequence[MethodRuns], samples: int = 10000, conventions: Sequence[str] = CONVENTIONS
):
    """One row per task × method × ablation × convention: seeds, mean over seeds and its
    95% bootstrap interval, against the ground truth matched to the ablation."""
    import pandas as pd

    rows = []
    for convention in conventions:
        for (method, ablation), by_task in seed_values(runs, convention).items():
            for task, values in by_task.items():
                low, high = bootstrap_interval(values, samples)
                rows.append(
                    {
                        "task": task,
                        "method": method,
                        "ablation": ablation,
                        "convention": convention,
                        "seeds": len(values),
                        "mean": sum(values) / len(values),
                        "ci low": low,
                        "ci high": high,
                    }
                )
    return pd.DataFrame(rows)


def separating_tasks(tasks, gap: float = SEPARATION_GAP):
    """Per ablation and convention, the tasks where the best and the worst non-random
    method's means differ by at least ``gap``, largest gap first (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    methods = tasks[tasks["method"] != "random"]
    for (task, ablation, convention), part in methods.groupby(
        ["task", "ablation", "convention"], sort=False
    ):
        if len(part) < 2:
            continue
        best, worst = part.loc[part["mean"].idxmax()], part.loc[part["mean"].idxmin()]
        if best["mean"] - worst["mean"] < gap:
            continue
        rows.append(
            {
                "task": task,
                "ablation": ablation,
                "convention": convention,
                "best": f"{best['method']} {best['mean']:.3f}",
                "worst": f"{worst['method']} {worst['mean']:.3f}",
                "gap": round(float(best["mean"] - worst["mean"]), 6),
                "intervals apart": bool(best["ci low"] > worst["ci high"]),
            }
        )
    columns = ["task", "ablation", "convention", "best", "worst", "gap", "intervals apart"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("gap", ascending=False, kind="stable").reset_index(drop=True)


def _cell(mean: float, low: float, high: float, seeds: int) -> str:
    return f"{mean:.3f}" if seeds < 2 else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def suite_tables(
    runs: Sequence[MethodRuns],
    samples: int = 10000,
    conventions: Sequence[str] = CONVENTIONS,
    tasks=None,
) -> list[Table]:
    """The suite's tables: one summary (a row per method, suite mean [interval] per
    ablation and convention, tasks below :data:`HEADROOM_AUC`), one per ablation and
    convention with a row per task and a column per method (best per row in bold, the
    suite mean last), and the tasks that separate the methods."""
    import pandas as pd

    summary = suite_frame(runs, samples, conventions)
    if summary.empty:
        return []
    if tasks is None:  # a caller that also draws the figures passes the frame it built
        tasks = task_frame(runs, samples, conventions)
    below = f"tasks below {HEADROOM_AUC}"
    methods = list(dict.fromkeys(summary["method"]))
    columns = list(dict.fromkeys(zip(summary["ablation"], summary["convention"], strict=True)))
    cells = pd.DataFrame("–", index=methods, columns=[f"{a} · {c}" for a, c in columns])
    for _, row in summary.iterrows():
        column = f"{row['ablation']} · {row['convention']}"
        cell = _cell(row["mean"], row["ci low"], row["ci high"], row["seeds"])
        cells.loc[row["method"], column] = f"{cell} ({row[below]}/{row['tasks']} < {HEADROOM_AUC})"
    cells.index.name = "method"
    n_tasks = int(summary["tasks"].max())
    tables = [
        Table(
            "suite-summary",
            f"Suite mean AUC over {n_tasks} tasks: the mean over tasks of each task's mean "
            "over seeds [95% two-level bootstrap interval: tasks, then seeds, with "
            "replacement], against the ground truth made for each ablation "
            f"({matched_names(runs)}); in brackets, on how many tasks the "
            f"method's mean is below {HEADROOM_AUC}.",
            cells,
            None,
            summary,
        )
    ]
    for ablation, convention in columns:
        part = tasks[(tasks["ablation"] == ablation) & (tasks["convention"] == convention)]
        names = sorted(set(part["task"]))
        grid = pd.DataFrame("–", index=[*names, "suite mean"], columns=methods)
        bold = pd.DataFrame(False, index=grid.index, columns=methods)
        for task, rows in part.groupby("task"):
            best = rows["mean"].max()
            for _, row in rows.iterrows():
                grid.loc[task, row["method"]] = _cell(
                    row["mean"], row["ci low"], row["ci high"], row["seeds"]
                )
                bold.loc[task, row["method"]] = bool(row["mean"] >= best - 1e-12)
        for _, row in summary[
            (summary["ablation"] == ablation) & (summary["convention"] == convention)
        ].iterrows():
            grid.loc["suite mean", row["method"]] = _cell(
                row["mean"], row["ci low"], row["ci high"], row["seeds"]
            )
        grid.index.name = bold.index.name = "task"
        grid = grid.loc[:, [m for m in methods if (grid[m] != "–").any()]]
        bold = bold.loc[:, list(grid.columns)]
        tables.append(
            Table(
                f"suite-{ablation}-{convention}",
                f"AUC per task, {ablation} ablation against its ground truth, convention "
                f"{convention}: mean over seeds [95% percentile-bootstrap interval]; best per "
                "task in bold; last row: the suite mean [two-level interval].",
                grid,
                bold,
                part.reset_index(drop=True),
            )
        )
    separating = separating_tasks(tasks)
    tables.append(
        Table(
            "suite-separating",
            f"Tasks that separate the methods: the best and the worst non-random method's "
            f"means differ by at least {SEPARATION_GAP} ('intervals apart': their 95% seed "
            "intervals do not overlap), largest gap first.",
            separating.assign(gap=separating["gap"].map("{:.3f}".format)).astype(str),
            None,
            separating,
        )
    )
    return tables
