"""A report's sources: the studies and comparisons it reads, each with its records.

A source is named by its config (a study, comparison or transfer YAML) or by its name
under the runs directory; either way only its records and its config are read. A
comparison's and a transfer's records are runs (each method's seeds); a study's are
trials, of which the report takes the best, and its held-out runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.configs.base import NAME_PATTERN
from harness.configs.figure import FigureConfig
from harness.configs.loading import AnyConfig, load_any_config
from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.records.check import check_records_file
from harness.records.kinds import check_kind, kind_of
from harness.records.selection import best_complete_record, first_objective, one_per_cell
from harness.records.store import read_records


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
        figure: The ``figure`` section of its config, where the config has one.
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
    figure: FigureConfig | None = None


def load_source(spec: str, runs_dir: Path) -> Source:
    """A study/comparison YAML path, or a study name under ``runs_dir``, with its records.
    A name is a config's name (no ``/``): a folder of records elsewhere is named by its
    ``--runs-dir``, so an absolute or relative path that is not a config is refused.

    Raises:
        ValueError: One line, when the file is missing or invalid or there are no records.

    Example:
        >>> import json, tempfile
        >>> runs = Path(tempfile.mkdtemp())
        >>> run = {"study": "cmp", "trial": 0, "state": "COMPLETE", "algorithm": "eap",
        ...        "task": "t", "ground_truth": None, "objective": None, "params": {}}
        >>> (runs / "cmp").mkdir()
        >>> _ = (runs / "cmp" / "trials.jsonl").write_text(json.dumps(run) + "\\n")
        >>> source = load_source("cmp", runs)
        >>> source.kind, len(source.records)
        ('compare', 1)
    """
    path = Path(spec)
    config = None
    if path.suffix in (".yaml", ".yml") or path.is_file():
        config = _load_config(path)
        name = config.name
    elif re.fullmatch(NAME_PATTERN, spec):
        name = spec
    else:  # a path would be read outside --runs-dir ("/etc" read /etc/trials.jsonl)
        raise ValueError(
            f"report source {spec!r} is neither a config file nor a study name (letters, "
            "digits, _.-): name a study under --runs-dir, or its YAML config"
        )
    kind = getattr(config, "kind", None) or (None if config is None else "study")
    if kind is not None:  # a config names its kind: another kind's place is refused
        check_kind(runs_dir / name, kind)
    else:
        kind = kind_of(runs_dir / name)
    records_path = runs_dir / name / ("transfer.jsonl" if kind == "transfer" else "trials.jsonl")
    check_records_file(records_path)
    records = read_records(records_path)
    if not records:
        raise ValueError(f"no records for {name!r}: {records_path} is missing or empty")
    comparison = kind in ("compare", "transfer") or (
        kind is None and _looks_like_comparison(records)
    )
    figure = config.figure if config is not None and "figure" in config.model_fields_set else None
    if comparison:
        samples = getattr(config, "bootstrap_samples", 10000)
        return Source(
            name, "compare", one_per_cell(records), bootstrap_samples=samples, figure=figure
        )
    source = _study_source(name, records, config)
    source.heldout = read_records(records_path.with_name("heldout.jsonl"))
    source.figure = figure
    return source


def _load_config(path: Path) -> AnyConfig:
    if not path.exists():
        raise ValueError(f"study config {str(path)!r} does not exist")
    return load_any_config(path)


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


def figure_config(sources: list[Source]) -> FigureConfig:
    """The figure settings of a report: the ``figure`` section its configs give (they
    must agree), else the defaults.

    Raises:
        ValueError: One line, when two sources give different sections.

    Example:
        >>> column = FigureConfig(width="column")
        >>> figure_config([Source("a", "compare", []), Source("b", "study", [], figure=column)])
        FigureConfig(width='column', formats=['pdf', 'svg', 'png'])
    """
    given = [s for s in sources if s.figure is not None]
    for other in given[1:]:
        if other.figure != given[0].figure:
            raise ValueError(
                f"the figure sections of {given[0].name!r} and {other.name!r} differ "
                f"({given[0].figure} vs {other.figure}); give one, or the same in both"
            )
    return given[0].figure if given else FigureConfig()


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
