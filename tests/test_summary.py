"""A study's summary.md: the objective's agreement with AUC, computed by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from harness.reporting.study_summary import objective_auc_agreement, summary_markdown


def trial(number: int, objective: float, auc: float) -> dict:
    return {
        "trial": number,
        "state": "COMPLETE",
        "objective": objective,
        "auc": {"resample": {"score-trapezoid": auc}},
        "faithfulness": {"kl_div": objective, "measure": "kl_div", "n_edges": 10},
        "params": {"x": number},
        "seconds": 1.0,
    }


def test_spearman_without_ties_is_the_textbook_formula():
    objective = [0.3, 0.1, 0.4, 0.2, 0.5, 0.05]
    auc = [0.6, 0.9, 0.7, 0.8, 0.4, 0.95]
    records = [trial(i, o, a) for i, (o, a) in enumerate(zip(objective, auc, strict=True))]
    rank_o = np.argsort(np.argsort(objective))
    rank_a = np.argsort(np.argsort(auc))
    n = len(objective)
    expected = 1 - 6 * np.sum((rank_o - rank_a) ** 2) / (n * (n * n - 1))
    rho, count = objective_auc_agreement(records)["resample"]
    assert count == n and rho == pytest.approx(expected)


def test_ties_share_their_average_rank():
    records = [trial(0, 1.0, 0.5), trial(1, 1.0, 0.7), trial(2, 2.0, 0.7), trial(3, 3.0, 0.9)]
    ranks_o, ranks_a = np.array([1.5, 1.5, 3, 4]), np.array([1, 2.5, 2.5, 4])
    expected = np.corrcoef(ranks_o, ranks_a)[0, 1]
    assert objective_auc_agreement(records)["resample"] == (pytest.approx(expected), 4)


def test_the_summary_shows_it_and_skips_what_cannot_be_computed():
    records = [trial(i, 0.1 * i, 1 - 0.1 * i) for i in range(4)]
    text = summary_markdown("s", records, "resample")
    assert "## Objective against AUC" in text and "| `resample` | -1.000 | 4 |" in text
    constant = [trial(i, 0.5, 0.1 * i) for i in range(4)]
    assert objective_auc_agreement(constant) == {}
    assert objective_auc_agreement(records[:2]) == {}  # fewer than 3 trials
