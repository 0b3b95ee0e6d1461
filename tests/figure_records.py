"""Synthetic records of every source a report draws figures for, written with their configs:
a comparison on two tracr tasks (ROC curves, sweeps, faithfulness curves, MIB's f), a
five-task suite comparison, a study with complete, pruned and failed trials and held-out
runs, and a two-objective study. Deterministic (seeded), and fast: no run, no model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

MIB_FRACTIONS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
METHODS = ("sp", "acdc", "eap", "edge-pruning", "random")
SWEEPING = ("sp", "acdc", "edge-pruning")
TASKS = ("tracr-reverse", "tracr-proportion")
SUITE_TASKS = (
    "tracr-count-a",
    "tracr-detect-abc",
    "tracr-frac-prev-equal",
    "tracr-shift-2",
    "tracr-sort-freq-reverse",
)
SEARCH_SPACE = {
    "learning_rate": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
    "regularize_lambda": {"type": "float", "low": 0.001, "high": 100.0, "log": True},
    "init_val": {"type": "float", "low": -4.0, "high": 4.0},
    "epochs": {"type": "int", "low": 10, "high": 200, "step": 10},
}


def roc(rng: random.Random, quality: float) -> dict[str, list[float]]:
    """A monotone ROC curve from (0, 0) to (1, 1), better with ``quality`` in [0, 1]."""
    fpr = sorted({0.0, 1.0, *(round(rng.random(), 3) for _ in range(6))})
    tpr = [min(1.0, round(x ** (1 / (1 + 6 * quality)), 3)) for x in fpr]
    return {"fpr": fpr, "tpr": tpr}


def run_record(rng: random.Random, trial: int, method: str, task: str, ablation: str, seed: int):
    """One comparison run: AUCs in both conventions (sweeps for the sweeping methods), ROC
    curves, a faithfulness curve and MIB's f."""
    quality = {"sp": 0.6, "acdc": 0.9, "eap": 0.8, "edge-pruning": 0.7, "random": 0.0}[method]
    quality = max(0.0, min(1.0, quality + rng.uniform(-0.1, 0.1)))
    gts = ("resample", "acdc-zero") if task == "tracr-reverse" else ("resample", "zero")
    auc = {
        gt: {"score-trapezoid": round(0.5 + quality / 2 - 0.05 * i, 4)} for i, gt in enumerate(gts)
    }
    record = {
        "study": "figs-cmp",
        "trial": trial,
        "state": "COMPLETE",
        "algorithm": method,
        "task": task,
        "ground_truth": None,
        "objective": None,
        "params": {"ablation": ablation, **({"tree_optimisation": True} if method == "sp" else {})},
        "seed": seed,
        "seconds": 1.0,
        "auc": auc,
        "roc": {gt: roc(rng, quality) for gt in gts},
        "faithfulness_curve": [
            {
                "n_edges": k,
                "kl_div": round(0.3 * (1 - quality) ** (k / 8), 4),
                "correct_percent": 50.0,
            }
            for k in (0, 1, 2, 4, 8, 16, 32)
        ],
        "mib": {
            "fractions": MIB_FRACTIONS,
            "cmd_faithfulness": [round(min(1.0, p ** (1 - quality)), 4) for p in MIB_FRACTIONS],
            "cpr_faithfulness": [round(min(1.0, p ** (1 - quality)), 4) for p in MIB_FRACTIONS],
        },
    }
    if method in SWEEPING:
        for gt in gts:
            auc[gt]["sweep-pessimistic"] = round(0.4 + quality / 2, 4)
        record["sweep_roc"] = {gt: roc(rng, quality) for gt in gts}
    return record


def comparison_records(tasks=TASKS, methods=METHODS, seeds=(0, 1, 2)) -> list[dict]:
    rng = random.Random(0)
    return [
        run_record(rng, i, method, task, ablation, seed)
        for i, (task, ablation, method, seed) in enumerate(
            (t, a, m, s)
            for t in tasks
            for a in ("resample", "zero")
            for m in methods
            for s in seeds
        )
    ]


def study_records(name: str, multi: bool = False) -> list[dict]:
    """A study's trials: complete ones, a few pruned, one failed."""
    rng = random.Random(1)
    records = []
    for trial in range(14):
        state = "FAIL" if trial == 5 else "PRUNED" if trial in (3, 8, 11) else "COMPLETE"
        params = {
            "ablation": "resample",
            "tree_optimisation": True,
            "learning_rate": round(10 ** rng.uniform(-3, 0), 5),
            "regularize_lambda": round(10 ** rng.uniform(-3, 2), 5),
            "init_val": round(rng.uniform(-4, 4), 3),
            "epochs": rng.randrange(10, 210, 10),
        }
        auc = round(rng.uniform(0.5, 1.0), 4)
        size = rng.randrange(1, 60)
        kl = round(rng.uniform(0.0, 0.3), 4)
        complete = state == "COMPLETE"
        objective = ([kl, size] if multi else auc) if complete else None
        records.append(
            {
                "study": name,
                "trial": trial,
                "state": state,
                "algorithm": "sp",
                "task": "tracr-reverse",
                "ground_truth": None if multi else "resample",
                "params": params,
                "seed": trial,
                "objective": objective,
                "auc": {"resample": {"score-trapezoid": auc}} if complete else {},
                "circuit_size": size if complete else None,
                "faithfulness": {"kl_div": kl, "n_edges": 5, "measure": "kl_div"}
                if complete
                else {},
                "history": {
                    "loss": [round(1.5 - 0.02 * i + rng.uniform(0, 0.2), 4) for i in range(30)],
                    "faithfulness": [round(0.3 - 0.005 * i, 4) for i in range(30)],
                    "regularisation": [round(1.2 - 0.01 * i, 4) for i in range(30)],
                }
                if complete
                else {},
                "seconds": 2.0,
                "fail_reason": "RuntimeError: out of memory" if state == "FAIL" else None,
            }
        )
    return records


def heldout_lines(records: list[dict], seeds: int = 3) -> list[dict]:
    best = max((r for r in records if r["state"] == "COMPLETE"), key=lambda r: r["objective"])
    rng = random.Random(2)
    lines = []
    for seed in range(seeds):
        value = round(best["objective"] - rng.uniform(0.05, 0.2), 4)
        lines.append(
            {
                "study": best["study"],
                "trial": best["trial"],
                "seed": 1_000_000 + seed,
                "split": "test",
                "state": "COMPLETE",
                "params": best["params"],
                "selection_value": best["objective"],
                "selection_auc": best["auc"],
                "objective": value,
                "auc": {"resample": {"score-trapezoid": value}},
                "roc": {"resample": roc(rng, value)},
                "mib": {"fractions": MIB_FRACTIONS, "cmd_faithfulness": MIB_FRACTIONS},
                "seconds": 1.0,
            }
        )
    return lines


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_sources(root: Path, figure: dict | None = None) -> dict[str, Path]:
    """Every source's records under ``root/runs`` and its config under ``root``; the
    configs carry ``figure`` as their figure section when given. Returns name -> config."""
    runs = root / "runs"
    section = {"figure": figure} if figure is not None else {}
    configs = {
        "figs-cmp": {
            "version": 1,
            "kind": "compare",
            "name": "figs-cmp",
            "tasks": list(TASKS),
            "ablations": ["resample", "zero"],
            "seeds": [0, 1, 2],
            "bootstrap_samples": 200,
            "methods": {m: {} for m in METHODS},
            **section,
        },
        "figs-study": {
            "version": 1,
            "name": "figs-study",
            "task": "tracr-reverse",
            "ground_truth": "resample",
            "algorithm": "sp",
            "search_space": SEARCH_SPACE,
            "objective": {"metric": "roc_auc"},
            **section,
        },
        "figs-multi": {
            "version": 1,
            "name": "figs-multi",
            "task": "tracr-reverse",
            "algorithm": "sp",
            "search_space": SEARCH_SPACE,
            "objective": {"metric": "faithfulness", "k": 5, "multi": True},
            **section,
        },
    }
    write_jsonl(runs / "figs-cmp" / "trials.jsonl", comparison_records())
    study = study_records("figs-study")
    write_jsonl(runs / "figs-study" / "trials.jsonl", study)
    write_jsonl(runs / "figs-study" / "heldout.jsonl", heldout_lines(study))
    write_jsonl(runs / "figs-multi" / "trials.jsonl", study_records("figs-multi", multi=True))
    paths = {}
    for name, config in configs.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


def write_suite(root: Path) -> None:
    """A five-task comparison (a suite: the AUC-per-task figure) under ``root/runs``, read
    by its name."""
    records = comparison_records(SUITE_TASKS, ("sp", "acdc", "eap", "random"), seeds=(0, 1))
    for record in records:
        record["study"] = "figs-suite"
    write_jsonl(root / "runs" / "figs-suite" / "trials.jsonl", records)
