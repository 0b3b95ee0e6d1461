"""Statistics for tables: percentile-bootstrap intervals of a mean."""

from __future__ import annotations

import numpy as np


def bootstrap_interval(values: list[float], samples: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean.

    Example:
        >>> bootstrap_interval([1.0, 1.0, 1.0], 1000)
        (1.0, 1.0)
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(samples, len(data)), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
