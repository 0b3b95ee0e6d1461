"""A study's summary in Markdown, built from its records alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.study.heldout import format_interval, summarize_heldout


def summary_markdown(
    name: str,
    records: list[dict[str, Any]],
    ground_truth: str | None,
    heldout: list[dict[str, Any]] | None = None,
) -> str:
    """Best parameters, best AUC, the held-out evaluation of the best trial (if it ran)
    and a table of trials.

    Example:
        >>> print(summary_markdown("s", [], None).splitlines()[0])
        # Study s
    """
    lines = [f"# Study {name}", ""]
    finished = [r for r in records if r["state"] in ("COMPLETE", "PRUNED", "FAIL")]
    complete = [r for r in finished if r["state"] == "COMPLETE"]
    counts = {s: sum(r["state"] == s for r in finished) for s in ("COMPLETE", "PRUNED", "FAIL")}
    lines.append(
        f"{len(finished)} trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed. AUC convention: {SCORE_TRAPEZOID} (edges ranked by |score|, "
        "trapezoid rule)."
    )
    gt = ground_truth or (next(iter(complete[0]["auc"])) if complete else None)
    if complete and gt is not None:
        best = max(complete, key=lambda r: r["auc"].get(gt, {}).get(SCORE_TRAPEZOID, -1.0))
        lines += [
            "",
            f"**Best AUC against `{gt}`: {best['auc'][gt][SCORE_TRAPEZOID]:.4f}** "
            f"(trial {best['trial']}, {best['seconds']:.1f} s)",
            "",
            "Best parameters:",
            "",
            *[f"- `{k}`: {_fmt(v)}" for k, v in sorted(best["params"].items())],
        ]
    lines += _heldout_section(heldout or [])
    lines += _agreement_section(complete)
    gts = list(complete[0]["auc"]) if complete else []
    measure = next((r["faithfulness"].get("measure", "kl_div") for r in complete), "kl_div")
    k = next((r["faithfulness"].get("n_edges") for r in complete), "k")
    label = f"{'MSE' if measure == 'mse' else 'KL'} top-{k}"
    header = ["trial", "state", *[f"AUC {g}" for g in gts], label, "circuit", "seconds", "params"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(finished, key=lambda r: r["trial"]):
        aucs = [_fmt(r["auc"].get(g, {}).get(SCORE_TRAPEZOID)) for g in gts]
        kl = _fmt(r.get("faithfulness", {}).get(measure))
        params = json.dumps({k: r["params"][k] for k in sorted(r["params"])}, default=str)
        state = r["state"] if r["state"] != "FAIL" else f"FAIL: {r.get('fail_reason') or '?'}"
        lines.append(
            f"| {r['trial']} | {state} | {' | '.join(aucs)}{' | ' if aucs else ''}{kl} | "
            f"{_fmt(r.get('circuit_size'))} | {r['seconds']:.1f} | `{params}` |"
        )
    return "\n".join(lines) + "\n"


def _heldout_section(heldout: list[dict[str, Any]]) -> list[str]:
    summary = summarize_heldout(heldout)
    if summary is None:
        return []
    selection = "–" if summary.selection_value is None else f"{summary.selection_value:.4f}"
    split = heldout[0].get("split", "test")
    seeds = sorted(r["seed"] for r in heldout if r.get("state") == "COMPLETE")
    out = [
        "",
        "## Held-out evaluation",
        "",
        f"Trial {summary.trial}'s parameters run again on {summary.runs} seeds the search never "
        f"used ({', '.join(map(str, seeds))}), faithfulness on the {split} split"
        + (f"; {summary.failed} run(s) failed" if summary.failed else "")
        + ". Mean [95% percentile-bootstrap interval over seeds]:",
        "",
        "| value | selection (the search's best: biased upward) | held-out |",
        "|---|---|---|",
        f"| objective | {selection} | {format_interval(summary.objective)} |",
    ]
    for gt, value in summary.auc.items():
        chosen = summary.selection_auc.get(gt)
        chosen_cell = "–" if chosen is None else f"{chosen:.4f}"
        out.append(f"| AUC `{gt}` ({SCORE_TRAPEZOID}) | {chosen_cell} | {format_interval(value)} |")
    return out


def objective_auc_agreement(records: list[dict[str, Any]]) -> dict[str, tuple[float, int]]:
    """Per ground truth, Spearman's rank correlation between the trials' (first) objective
    and their AUC (score-trapezoid), and the number of trials: whether an objective that
    needs no ground truth picks the circuits a ground truth would. Ties share ranks.

    Example:
        >>> rows = [{"state": "COMPLETE", "objective": o, "auc": {"g": {"score-trapezoid": a}}}
        ...         for o, a in ((0.1, 0.9), (0.2, 0.8), (0.3, 0.5))]
        >>> objective_auc_agreement(rows)
        {'g': (-1.0, 3)}
    """
    import pandas as pd

    def first(value: Any) -> float | None:
        value = value[0] if isinstance(value, list) and value else value
        return float(value) if isinstance(value, (int, float)) and value == value else None

    out: dict[str, tuple[float, int]] = {}
    complete = [r for r in records if r.get("state") == "COMPLETE"]
    ground_truths = list(dict.fromkeys(gt for r in complete for gt in r.get("auc", {})))
    for gt in ground_truths:
        pairs = [
            (first(r.get("objective")), r["auc"].get(gt, {}).get(SCORE_TRAPEZOID)) for r in complete
        ]
        pairs = [(o, a) for o, a in pairs if o is not None and a is not None]
        if len(pairs) < 3:
            continue
        frame = pd.DataFrame(pairs, columns=["objective", "auc"])
        rho = frame["objective"].rank().corr(frame["auc"].rank())
        if rho == rho:  # constant columns have no correlation
            out[gt] = (round(float(rho), 6), len(pairs))
    return out


def _agreement_section(complete: list[dict[str, Any]]) -> list[str]:
    agreement = objective_auc_agreement(complete)
    if not agreement:
        return []
    out = [
        "",
        "## Objective against AUC",
        "",
        "Spearman's rank correlation, over complete trials, between the objective and the AUC "
        f"({SCORE_TRAPEZOID}) against each ground truth (+1: the objective ranks trials as the "
        "AUC does; for an objective to minimise, −1 is the agreeing sign):",
        "",
        "| ground truth | ρ | trials |",
        "|---|---|---|",
    ]
    out += [f"| `{gt}` | {rho:+.3f} | {n} |" for gt, (rho, n) in agreement.items()]
    return out


def write_summary(
    path: Path,
    name: str,
    records: list[dict[str, Any]],
    ground_truth,
    heldout: list[dict[str, Any]] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary_markdown(name, records, ground_truth, heldout))
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
