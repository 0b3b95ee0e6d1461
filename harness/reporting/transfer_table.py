"""A transfer's result as Markdown (the terminal's and ``reports/<name>/transfer.md``)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.reporting.figures import MethodRuns
from harness.reporting.suite import suite_tables
from harness.reporting.tables import markdown_table


def transfer_markdown(config, runs: Sequence[MethodRuns], samples: int = 10000) -> str:
    """A transfer's result as Markdown: per method, the mean AUC over the test tasks and
    seeds [two-level interval], then per test task."""
    # score-based only: sp-default and sp-transfer give one circuit per run, which is no
    # sweep (a sweep-pessimistic number from one point would not compare with ACDC's)
    tables = suite_tables(runs, samples, conventions=(SCORE_TRAPEZOID,))
    train = ", ".join(config.train_tasks)
    split = (
        f"{config.folds}-fold over {train}"
        if config.folds
        else f"train: {train}; test: {', '.join(config.test_tasks)}"
    )
    lines = [
        f"# Transfer {config.name}",
        "",
        f"SP's settings searched on the train tasks ({config.n_trials} trials, objective "
        f"{config.objective.metric}, {config.aggregate} over tasks) and scored on the test "
        f"tasks over seeds {config.seeds}, {config.ablation} ablation ({split}). "
        "sp-default: the reference's hyperparameters; sp-transfer: the best train settings; "
        "sp-oracle: searched on that test task itself. AUC score-trapezoid only: SP gives "
        "one circuit per run, no sweep.",
        "",
    ]
    for table in tables:
        if table.stem == "suite-separating":
            continue
        lines += [
            f"## {table.stem}",
            "",
            table.caption,
            "",
            markdown_table(table.frame, table.bold),
        ]
        lines.append("")
    return "\n".join(lines)
