"""The terminal's view of a running study: one progress bar."""

from __future__ import annotations

import math
from typing import Any

from harness.study.budget import count_trials


class StudyProgress:
    """A tqdm bar of finished trials, the best value and the current trial's epoch.

    Args:
        total: The budget (trials).
        enabled: Whether the bar is shown.
        study: The Optuna study, read for finished trials and the best value.
    """

    def __init__(self, total: int, enabled: bool, study: Any) -> None:
        from tqdm.auto import tqdm

        self.study = study
        finished = count_trials(study).finished
        self.bar = tqdm(
            total=total,
            initial=min(finished, total),
            desc=study.study_name,
            disable=not enabled,
            unit="trial",
        )

    def trial_done(self, trial) -> None:
        self.refresh_from_storage()

    def epoch(self, trial_number: int, epoch: int, faithfulness: float) -> None:
        self.bar.set_postfix_str(self._best() + f" trial {trial_number} epoch {epoch}")

    def refresh_from_storage(self) -> None:
        finished = count_trials(self.study).finished
        self.bar.n = min(finished, self.bar.total)
        self.bar.set_postfix_str(self._best())

    def _best(self) -> str:
        try:
            value = self.study.best_value
        except (ValueError, RuntimeError):
            return "best -"
        return (
            f"best {value:.4f}" if isinstance(value, float) and math.isfinite(value) else "best -"
        )

    def close(self) -> None:
        self.bar.close()
