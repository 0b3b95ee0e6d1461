"""Each method's runs, grouped by task and ablation: what the report's tables and figures
show.

A comparison contributes each method's COMPLETE runs (one per seed); a study contributes
its best trial's held-out runs as the row ``<method> tuned (<study>), held-out`` (never
its selection value, which is biased by the search).
"""

from __future__ import annotations

from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.records.selection import method_label
from harness.reporting.figures import MethodRuns
from harness.reporting.sources import Source, best_trial


def ablation_of(record: dict[str, Any]) -> str:
    """The ablation a record's run used: its parameter, else the one its circuit's
    faithfulness was measured under (the algorithm's default, which a study records there
    when its config leaves the parameter out), else ``–``.

    Example:
        >>> ablation_of({"algorithm": "sp", "params": {"ablation": "zero"}})
        'zero'
        >>> ablation_of({"algorithm": "sp", "params": {}, "faithfulness": {"ablation": "mean"}})
        'mean'
        >>> ablation_of({"algorithm": "sp", "params": {}})
        '–'
    """
    if "ablation" in record["params"]:
        return str(record["params"]["ablation"])
    measured = (record.get("faithfulness") or {}).get("ablation")
    return measured if isinstance(measured, str) else "–"


def method_runs(sources: list[Source]) -> list[MethodRuns]:
    """Each method's COMPLETE runs per task and ablation, in order of appearance
    (comparisons first, then the studies' tuned rows).

    Example:
        >>> run = {"state": "COMPLETE", "algorithm": "eap", "task": "t",
        ...        "params": {"ablation": "zero"}}
        >>> [(r.label, r.task, r.ablation, len(r.records))
        ...  for r in method_runs([Source("c", "compare", [run, run])])]
        [('eap', 't', 'zero', 2)]
    """
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
