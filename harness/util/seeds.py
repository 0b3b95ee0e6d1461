"""The range of a seed, wherever one is typed (a study's, ``--seed``, a task's data seed)."""

from __future__ import annotations

from typing import Any

SEED_MAX = 2**31 - 1
"""Largest seed accepted: a study's trial ``n`` is seeded with ``seed + n``, and NumPy
(inside Optuna's samplers) takes seeds below 2**32."""


def check_seed(seed: Any, what: str = "seed") -> int:
    """A seed in ``[0, SEED_MAX]``, else a one-line ValueError.

    Example:
        >>> check_seed(3)
        3
        >>> check_seed(-1, "task_options: seed")
        Traceback (most recent call last):
        ...
        ValueError: task_options: seed must be an integer in [0, 2147483647], got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{what} must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return seed
