"""A report of studies and comparisons, built from their records alone (never W&B).

``harness report STUDY...`` writes into one directory::

    index.html            links to everything, tables inline
    report.md             the tables and the PNGs inline (relative paths)
    tables/auc.csv        every AUC: method, task, ablation, ground truth, convention,
                          seeds, mean, 95% bootstrap interval, best of its group
    tables/auc-<gt>-<convention>.{md,tex}   one row per method, one column per task
    tables/best-params.{md,csv,tex}         the best trial of each study
    tables/trials-<name>.{md,csv,tex}       every trial / run
    tables/suite-*.{md,csv,tex}             comparisons over 2+ tasks: the suite mean per
                                            method, AUC per task, tasks that separate methods
    figures/<stem>.{html,json,pdf,svg,png}  ROC, faithfulness (up to 4 tasks), AUC per task
                                            (suites), Optuna and training plots

A study contributes its best trial as the method ``<algorithm> tuned (<study>)``; a
comparison contributes each method's seeds.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC
from harness.records.selection import best_complete_record, first_objective, method_label
from harness.reporting.figures import MethodRuns, record_auc
from harness.reporting.suite import spans_several_tasks, suite_figures, suite_tables, task_frame
from harness.reporting.tables import Table

CONVENTIONS = (SCORE_TRAPEZOID, SWEEP_PESSIMISTIC)
WIDE_TABLE = 8  # in a suite report, per-method AUC tables wider than this go to auc.csv only
FEW_TASKS = 4  # ROC and faithfulness figures per task up to this many tasks (suite figures beyond)
CONVENTION_NOTES = {
    SCORE_TRAPEZOID: "one ranking of all edges by |score|, ties together, trapezoid rule",
    SWEEP_PESSIMISTIC: "one circuit per sweep run, pessimistic staircase (the ACDC paper's)",
}


@dataclass
class Source:
    """A study or comparison and its records.

    Attributes:
        name: The study's or comparison's name.
        kind: ``"study"`` or ``"compare"``.
        records: Its records.
        ground_truth: The ground truth a study optimises against.
        direction: ``"maximize"`` or ``"minimize"`` (a study's first objective).
        objective_name: What the first objective is.
        log_params: Parameters searched on a log scale.
        bootstrap_samples: Resamples of the bootstrap interval.
        heldout: A study's held-out runs (``heldout.jsonl``).
    """

    name: str
    kind: str
    records: list[dict[str, Any]]
    ground_truth: str | None = None
    direction: str = "maximize"
    objective_name: str = "objective"
    log_params: tuple[str, ...] = ()
    bootstrap_samples: int = 10000
    heldout: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes:
        out: The report's directory.
        files: Every file written, relative to ``out``.
        warning: One line on what is missing (static figures without a browser), or None.
        seconds: Wall time of the whole report.
        seconds_per_figure: Kaleido time per figure (three formats), if it ran.
    """

    out: Path
    files: list[str] = field(default_factory=list)
    warning: str | None = None
    seconds: float = 0.0
    seconds_per_figure: float | None = None


def load_source(spec: str, runs_dir: Path) -> Source:
    """A study/comparison YAML path, or a study name under ``runs_dir``, with its records.

    Raises:
        ValueError: One line, when the file is missing or invalid or there are no records.
    """
    from harness.records.check import check_records_file
    from harness.records.store import read_records

    path = Path(spec)
    config = None
    if path.suffix in (".yaml", ".yml") or path.is_file():
        config = _load_config(path)
        name = config.name
    else:
        name = spec
    kind = getattr(config, "kind", None)
    records_path = runs_dir / name / ("transfer.jsonl" if kind == "transfer" else "trials.jsonl")
    if config is None and (runs_dir / name / "transfer.jsonl").exists():
        kind, records_path = "transfer", runs_dir / name / "transfer.jsonl"
    check_records_file(records_path)
    records = read_records(records_path)
    if not records:
        raise ValueError(f"no records for {name!r}: {records_path} is missing or empty")
    comparison = kind in ("compare", "transfer") or (
        config is None and _looks_like_comparison(records)
    )
    if comparison:
        samples = getattr(config, "bootstrap_samples", 10000)
        return Source(name, "compare", records, bootstrap_samples=samples)
    source = _study_source(name, records, config)
    source.heldout = read_records(records_path.with_name("heldout.jsonl"))
    return source


def _load_config(path: Path):
    from harness.configs.safe_yaml import read_yaml_file

    if not path.is_file():
        raise ValueError(f"study config {str(path)!r} does not exist")
    try:
        data = read_yaml_file(path)
    except ValueError:
        data = None  # the loader below reports it in one line
    if isinstance(data, dict) and data.get("kind") == "compare":
        from harness.configs.compare import load_compare_config

        return load_compare_config(path)
    if isinstance(data, dict) and data.get("kind") == "transfer":
        from harness.configs.transfer import load_transfer_config

        return load_transfer_config(path)
    from harness.configs.study import load_config

    return load_config(path)


def _looks_like_comparison(records: list[dict[str, Any]]) -> bool:
    if any(r.get("faithfulness_curve") for r in records):
        return True
    return all(r.get("objective") is None and r.get("ground_truth") is None for r in records)


def _study_source(name: str, records: list[dict[str, Any]], config) -> Source:
    gt = config.ground_truth if config else next((r["ground_truth"] for r in records), None)
    if config is not None:
        metric = config.objective.metric
        log = tuple(k for k, d in config.search_space.items() if getattr(d, "log", False))
    else:
        metric = "roc_auc" if _objective_is_auc(records, gt) else "faithfulness"
        log = _spread_params(records)
    if metric == "roc_auc":
        return Source(name, "study", records, gt, "maximize", f"AUC vs {gt}", log)
    if metric == "cpr":
        return Source(name, "study", records, gt, "maximize", "MIB CPR (signed ranking)", log)
    if metric == "cmd":
        return Source(name, "study", records, gt, "minimize", "MIB CMD (absolute ranking)", log)
    if metric == "min_size":
        label = "smallest faithful circuit (fraction of edges)"
        return Source(name, "study", records, gt, "minimize", label, log)
    return Source(name, "study", records, gt, "minimize", "faithfulness (top-k)", log)


def _objective_is_auc(records: list[dict[str, Any]], gt: str | None) -> bool:
    for r in records:
        value = first_objective(r)
        if r["state"] == "COMPLETE" and value is not None and gt:
            return math.isclose(value, r["auc"].get(gt, {}).get(SCORE_TRAPEZOID, math.nan))
    return True


def _spread_params(records: list[dict[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, list[float]] = {}
    for r in records:
        for k, v in r["params"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                seen.setdefault(k, []).append(v)
    return tuple(k for k, vs in seen.items() if min(vs) > 0 and max(vs) / min(vs) >= 100)


def best_trial(source: Source) -> dict[str, Any] | None:
    """A study's best COMPLETE trial by its (first) objective, or None. In a study with
    circuit size as second objective, ties on the first go to the smaller circuit (then
    to the earlier trial).

    Example:
        >>> s = Source("s", "study", [{"state": "COMPLETE", "objective": v, "trial": i}
        ...                           for i, v in enumerate([0.2, 0.9, 0.5])])
        >>> best_trial(s)["trial"]
        1
        >>> m = Source("m", "study", [{"state": "COMPLETE", "objective": v, "trial": i}
        ...     for i, v in enumerate([[0.0, 9], [0.0, 2], [0.1, 1]])], direction="minimize")
        >>> best_trial(m)["trial"]
        1
    """
    return best_complete_record(source.records, source.direction == "maximize")


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


def _colour_ground_truth(source: Source, records: list[dict[str, Any]]) -> str | None:
    """The ground truth whose AUC colours a study's points: its own, else the first any
    record carries."""
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
    gt = _colour_ground_truth(source, front)
    varying = _varying_params(source.records)
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
    return Table(f"pareto-{_slug(source.name)}", caption, data.map(_cell), None, data)


def ablation_of(record: dict[str, Any]) -> str:
    """The ablation a record's run used: its parameter, else the algorithm's default.

    Example:
        >>> ablation_of({"algorithm": "sp", "params": {"ablation": "zero"}})
        'zero'
    """
    if "ablation" in record["params"]:
        return str(record["params"]["ablation"])
    from harness.algorithms import get_algorithm
    from harness.evaluation.run_one import algorithm_parameters

    try:
        default = algorithm_parameters(get_algorithm(record["algorithm"])).get("ablation")
    except (KeyError, ValueError):
        default = None
    return str(default) if isinstance(default, str) else "–"


def method_runs(sources: list[Source]) -> list[MethodRuns]:
    """Each method's COMPLETE runs per task and ablation, in order of appearance."""
    from harness.reporting.figures import assign_colours

    runs: dict[tuple[str, str, str], MethodRuns] = {}
    for source in sorted(sources, key=lambda s: s.kind != "compare"):  # tuned rows last
        if source.kind == "compare":
            for r in source.records:
                if r["state"] != "COMPLETE":
                    continue
                key = (method_label(r), r["task"], ablation_of(r))
                runs.setdefault(key, MethodRuns(*key)).records.append(r)
        else:
            best = best_trial(source)
            lines = tuned_heldout(source, best)
            if lines:
                label = f"{method_label(best)} tuned ({source.name}), held-out"
                key = (label, best["task"], ablation_of(best))
                runs[key] = MethodRuns(*key, records=lines)
    colours = assign_colours([run.label for run in runs.values()])
    for run in runs.values():
        run.colour = colours[run.label]
    return list(runs.values())


def tuned_heldout(source: Source, best: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The held-out runs of a study's best trial as records of its tuned row: its
    algorithm, task and ablation, one record per held-out seed, score-based AUC only (one
    circuit per run is no sweep). Empty without held-out runs: a study's selection value
    never stands in a column of seed means.

    Example:
        >>> best = {"trial": 2, "algorithm": "sp", "task": "t", "params": {}}
        >>> line = {"trial": 2, "state": "COMPLETE", "seed": 7, "params": {},
        ...         "auc": {"g": {"score-trapezoid": 0.8, "sweep-pessimistic": 0.5}}}
        >>> tuned_heldout(Source("s", "study", [best], heldout=[line]), best)[0]["auc"]
        {'g': {'score-trapezoid': 0.8}}
    """
    if best is None:
        return []
    lines = [r for r in source.heldout if r["trial"] == best["trial"] and r["state"] == "COMPLETE"]
    return [
        {
            **line,
            "algorithm": best["algorithm"],
            "task": best["task"],
            "auc": {
                gt: {k: v for k, v in conventions.items() if k == SCORE_TRAPEZOID}
                for gt, conventions in line["auc"].items()
            },
        }
        for line in lines
    ]


def auc_frame(runs: list[MethodRuns], samples: int = 10000):
    """Every AUC as one row: method, task, ablation, ground truth, convention, seeds, mean,
    the 95% bootstrap interval, and whether it is the best of its (task, ablation, ground
    truth, convention) group."""
    import pandas as pd

    from harness.evaluation.stats import bootstrap_interval

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
    return Table("best-params", caption, data.map(_cell), None, data)


def trials_table(source: Source) -> Table:
    """Every trial (study) or run (comparison) of a source, one row each."""
    import pandas as pd

    varying = _varying_params(source.records) if source.kind == "study" else []
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
    return Table(f"trials-{_slug(source.name)}", caption, data.map(_cell), None, data)


def _varying_params(records: list[dict[str, Any]]) -> list[str]:
    names = list(dict.fromkeys(k for r in records for k in r["params"]))
    return [k for k in names if len({repr(r["params"].get(k)) for r in records}) > 1]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(frame, bold=None) -> str:
    """A DataFrame of strings as a Markdown table (``**bold**`` where ``bold`` is True).

    Example:
        >>> import pandas as pd
        >>> print(markdown_table(pd.DataFrame({"a": ["1"], "b": ["x|y"]})))
        | a | b |
        |---|---|
        | 1 | x\\|y |
    """
    import pandas as pd

    def text(value: Any) -> str:
        return str(value).replace("|", "\\|")

    def header(column: Any) -> str:
        return " / ".join(map(str, column)) if isinstance(column, tuple) else str(column)

    named = frame.index.name is not None or isinstance(frame.index, pd.MultiIndex)
    heads = ([frame.index.name or ""] if named else []) + [header(c) for c in frame.columns]
    lines = ["| " + " | ".join(text(h) for h in heads) + " |", "|" + "---|" * len(heads)]
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = []
        for j, value in enumerate(row):
            cell = text(value)
            if bold is not None and bool(bold.iat[i, j]):
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(([text(label)] if named else []) + cells) + " |")
    return "\n".join(lines)


def _styler(table: Table):
    styler = table.frame.style
    if table.bold is not None:
        bold = table.bold

        styler = styler.apply(
            lambda _: bold.map(lambda b: "font-weight: bold" if b else ""), axis=None
        )
    return styler


def latex_table(table: Table) -> str:
    """The table as LaTeX (booktabs rules, caption naming the AUC convention)."""
    styler = _styler(table).format(escape="latex").format_index(escape="latex", axis=0)
    styler = styler.format_index(escape="latex", axis=1)
    if table.bold is None:
        styler = styler.hide(axis="index")
    n = len(table.frame.columns) + (0 if table.bold is None else table.frame.index.nlevels)
    return styler.to_latex(
        caption=_latex_escape(table.caption),
        label=f"tab:{table.stem}",
        hrules=True,
        convert_css=True,
        environment="table",
        position_float="centering",
        multicol_align="c",
        column_format="l" + "r" * (n - 1),
    )


def _latex_escape(text: str) -> str:
    text = "".join("\\" + c if c in "&%#_{}$" else c for c in text)
    return text.replace("|", r"$|$").replace("Σ", r"$\Sigma$")


def write_table(table: Table, out: Path) -> list[Path]:
    """Markdown, CSV and LaTeX of one table under ``out/tables``."""
    directory = out / "tables"
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"{table.stem}.md"
    md.write_text(f"{table.caption}\n\n{markdown_table(table.frame, table.bold)}\n")
    tex = directory / f"{table.stem}.tex"
    tex.write_text(latex_table(table))
    written = [md, tex]
    if table.data is not None:
        csv = directory / f"{table.stem}.csv"
        table.data.to_csv(csv, index=False)
        written.append(csv)
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@dataclass
class Figure:
    """A figure and its caption."""

    stem: str
    caption: str
    figure: Any


def comparison_figures(runs: list[MethodRuns]) -> list[Figure]:
    """ROC curves per task × ground truth × ablation and faithfulness per task × ablation."""
    from harness.reporting.figures import faithfulness_figure, faithfulness_measure, roc_figure

    figures = []
    groups: dict[tuple[str, str], list[MethodRuns]] = {}
    for run in runs:
        groups.setdefault((run.task, run.ablation), []).append(run)
    for (task, ablation), members in groups.items():
        records = [r for run in members for r in run.records]
        gts = list(dict.fromkeys(gt for r in records for gt in r.get("roc", {})))
        for gt in gts:
            caption = (
                f"ROC on {task} against ground truth {gt} ({ablation} ablation). Lines: "
                f"{SCORE_TRAPEZOID} (one per seed); dashed steps and markers: "
                f"{SWEEP_PESSIMISTIC} sweep points. AUC conventions in the legend."
            )
            figure = roc_figure(f"{task} · GT {gt} · {ablation} ablation", gt, members)
            figures.append(Figure(_slug(f"roc-{task}-{gt}-{ablation}"), caption, figure))
        curved = [run for run in members if any(r.get("faithfulness_curve") for r in run.records)]
        if curved:
            measure = faithfulness_measure(records)
            caption = (
                f"Faithfulness of the top-k edges on {task} ({ablation} ablation, test "
                f"batches): {measure}, mean over seeds, against k on a log axis."
            )
            figure = faithfulness_figure(f"{task} · {ablation} ablation", curved, measure)
            figures.append(Figure(_slug(f"faithfulness-{task}-{ablation}"), caption, figure))
    return figures


def study_figures(source: Source) -> list[Figure]:
    """A study's optimisation history, importances, parallel coordinates, learning rate ×
    λ contour, and the training curves of its best trial."""
    from harness.reporting import figures as fg

    name, objective = source.name, source.objective_name
    study = fg.optuna_study_from_records(source.records, source.direction, source.log_params)
    out: list[Figure] = []
    if not study.trials:
        return out
    stem = _slug(name)
    out.append(
        Figure(
            f"history-{stem}",
            f"Optimisation history of {name}: {objective} per trial and the best so far.",
            fg.optuna_history_figure(study, f"{name}: history", objective),
        )
    )
    searched = set(study.trials[0].distributions)
    if len(study.trials) >= 2 and searched:
        importance = fg.importance_figure(study, f"{name}: importances")
        if importance is not None:
            out.append(
                Figure(
                    f"importance-{stem}",
                    f"Hyperparameter importances of {name} for {objective} (PED-ANOVA).",
                    importance,
                )
            )
        out.append(
            Figure(
                f"parallel-{stem}",
                f"Parallel coordinates of {name}: searched parameters and {objective}.",
                fg.parallel_figure(study, f"{name}: parallel coordinates", objective),
            )
        )
    if {"learning_rate", "regularize_lambda"} <= searched and len(study.trials) >= 2:
        out.append(
            Figure(
                f"contour-{stem}",
                f"{objective} over learning rate and λ in {name} (interpolated; dots: trials).",
                fg.contour_figure(
                    study, f"{name}: lr × λ", "learning_rate", "regularize_lambda", objective
                ),
            )
        )
    scored = pareto_records(source)
    if scored:
        gt = _colour_ground_truth(source, [r for r, _ in scored])
        out.append(
            Figure(
                f"pareto-{stem}",
                f"{objective} against circuit size for every complete trial of {name}; ringed "
                f"and joined: the Pareto front"
                + (f"; colour: AUC vs {gt} ({SCORE_TRAPEZOID}), not an objective." if gt else "."),
                fg.pareto_figure(f"{name}: Pareto front", scored, objective, gt),
            )
        )
    best = best_trial(source)
    if best is not None and best.get("history", {}).get("loss"):
        out.append(
            Figure(
                f"training-{stem}",
                f"Training curves of the best trial ({best['trial']}) of {name}, per step.",
                fg.training_figure(f"{name}: trial {best['trial']}", best["history"]),
            )
        )
    return out


def build_report(sources: list[Source], out: Path, static: bool = True) -> ReportResult:
    """Write the tables, figures, ``index.html`` and ``report.md`` of some sources."""
    from harness.reporting.figures import export_figures
    from harness.reporting.static_export import HOW_TO_GET_THEM, static_timeout

    if static:
        static_timeout()  # a bad HARNESS_STATIC_TIMEOUT fails before any work
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(out)
    runs = method_runs(sources)
    samples = min((s.bootstrap_samples for s in sources), default=10000)
    frame = auc_frame(runs, samples)
    suite = spans_several_tasks(runs)
    per_task = task_frame(runs, samples) if suite else None
    tables = suite_tables(runs, samples, tasks=per_task) if suite else []
    tables += [t for t in auc_tables(frame) if not suite or len(t.frame.columns) <= WIDE_TABLE]
    best = best_params_table(sources)
    tables += [best] if best is not None else []
    tables += [trials_table(source) for source in sources]
    tables += [t for s in sources if s.kind == "study" and (t := pareto_table(s)) is not None]
    files: list[Path] = []
    if len(frame):
        (out / "tables").mkdir(exist_ok=True)
        frame.to_csv(out / "tables" / "auc.csv", index=False)
        files.append(out / "tables" / "auc.csv")
    for table in tables:
        files += write_table(table, out)
    few_tasks = len({run.task for run in runs}) <= FEW_TASKS
    figures = comparison_figures(runs) if few_tasks else []
    if suite:
        colours = {run.label: run.colour for run in runs}
        figures += [Figure(*parts) for parts in suite_figures(per_task, colours)]
    for source in sources:
        if source.kind == "study":
            figures += study_figures(source)
    exported = export_figures({f.stem: f.figure for f in figures}, out / "figures", static)
    result.seconds_per_figure = exported.seconds_per_figure
    if exported.static_error:
        result.warning = (
            f"no PDF/SVG/PNG figures, only HTML and JSON ({exported.static_error}); "
            f"{HOW_TO_GET_THEM}"
        )
    for stem in exported.files.values():
        files += [out / "figures" / name for name in stem.values()]
    if exported.files:
        files.append(out / "figures" / "plotly.min.js")
    sections = [(f, exported.files.get(f.stem, {})) for f in figures]
    (out / "report.md").write_text(_markdown(sources, tables, sections, result.warning))
    (out / "index.html").write_text(_html(sources, tables, sections, result.warning))
    files += [out / "report.md", out / "index.html"]
    result.files = sorted({str(p.relative_to(out)) for p in files if p.exists()})
    result.seconds = time.perf_counter() - start
    return result


def _describe(sources: list[Source]) -> str:
    parts = []
    for s in sources:
        states = [r["state"] for r in s.records]
        counts = ", ".join(f"{states.count(x)} {x.lower()}" for x in sorted(set(states)))
        parts.append(f"{'comparison' if s.kind == 'compare' else 'study'} {s.name} ({counts})")
    return "; ".join(parts)


def _markdown(sources, tables, sections, warning) -> str:
    lines = [
        "# Report",
        "",
        f"Built from the records of {_describe(sources)}. AUC conventions: "
        + "; ".join(f"**{c}**: {n}" for c, n in CONVENTION_NOTES.items())
        + ". Interactive figures: open `index.html`.",
        "",
    ]
    if warning:
        lines += [f"> {warning}", ""]
    lines += ["## Tables", ""]
    for table in tables:
        lines += [
            f"### {table.stem}",
            "",
            table.caption,
            "",
            markdown_table(table.frame, table.bold),
            "",
            f"[Markdown](tables/{table.stem}.md) · [LaTeX](tables/{table.stem}.tex)"
            + (f" · [CSV](tables/{table.stem}.csv)" if table.data is not None else ""),
            "",
        ]
    lines += ["## Figures", ""]
    for figure, files in sections:
        links = " · ".join(f"[{fmt.upper()}](figures/{name})" for fmt, name in files.items())
        lines += [f"### {figure.stem}", ""]
        if "png" in files:
            lines += [f"![{figure.caption}](figures/{files['png']})", ""]
        lines += [f"{figure.caption} {links}", ""]
    return "\n".join(lines)


def _html(sources, tables, sections, warning) -> str:
    escape = html.escape
    body = [
        "<h1>Report</h1>",
        f"<p>Built from the records of {escape(_describe(sources))}. AUC conventions: "
        + "; ".join(f"<b>{escape(c)}</b>: {escape(n)}" for c, n in CONVENTION_NOTES.items())
        + ".</p>",
    ]
    if warning:
        body.append(f"<p class='warn'>{escape(warning)}</p>")
    body.append("<h2>Tables</h2>")
    for table in tables:
        links = [f"<a href='tables/{table.stem}.{x}'>{x}</a>" for x in ("md", "tex")]
        if table.data is not None:
            links.append(f"<a href='tables/{table.stem}.csv'>csv</a>")
        styler = _styler(table)
        if table.bold is None:
            styler = styler.hide(axis="index")
        body += [
            f"<h3 id='{table.stem}'>{escape(table.stem)}</h3>",
            f"<p>{escape(table.caption)} ({' · '.join(links)})</p>",
            styler.to_html(),
        ]
    body.append("<h2>Figures</h2>")
    for figure, files in sections:
        links = " · ".join(f"<a href='figures/{n}'>{fmt}</a>" for fmt, n in files.items())
        image = (
            f"<a href='figures/{files['html']}'><img src='figures/{files['png']}' "
            f"width='{figure.figure.layout.width or 340}' alt='{escape(figure.stem)}'></a>"
            if "png" in files
            else f"<a href='figures/{files['html']}'>{escape(figure.stem)} (interactive)</a>"
        )
        body += [
            f"<figure id='{figure.stem}'>{image}<figcaption>{escape(figure.caption)} "
            f"({links})</figcaption></figure>"
        ]
    style = (
        "body{font-family:Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;}"
        "table{border-collapse:collapse;font-size:90%;margin:.5em 0}"
        "td,th{border-bottom:1px solid #ccc;padding:2px 8px;text-align:right}"
        "figure{display:inline-block;margin:1em;vertical-align:top;max-width:45em}"
        ".warn{color:#D55E00}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Report</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
