"""What a trained model must reach to be a member of ``siit-suite``.

Measured on the held-out inputs (:mod:`harness.tasks.siit.metrics`): accuracy, every IIA
and every strict accuracy at least 0.99; joint accuracy (every node outside the circuit
resampled at once) at least 0.95; and edge sufficiency: accuracy with every edge outside
the ``siit`` ground truth resample-ablated at once at least 0.95 (the edges methods are
scored against must be enough).

Example:
    >>> missed_targets({"metrics": {"accuracy": 1.0, "iia": 0.98, "strict": 1.0,
    ...                             "joint": 0.97}, "ablation_accuracy": {"siit": 0.96}})
    ['iia 0.980 < 0.99']
"""

from __future__ import annotations

from typing import Any

TARGETS: dict[str, float] = {
    "accuracy": 0.99,
    "iia": 0.99,
    "strict": 0.99,
    "joint": 0.95,
    "edge sufficiency": 0.95,
}


def missed_targets(stored: dict[str, Any]) -> list[str]:
    """The targets a trained model's file (as :func:`read_siit` gives it) misses, each as
    ``"name value < target"``; empty when it meets them all."""
    values = {key: float(stored["metrics"][key]) for key in ("accuracy", "iia", "strict", "joint")}
    values["edge sufficiency"] = float(stored["ablation_accuracy"]["siit"])
    return [
        f"{name} {values[name]:.3f} < {target}"
        for name, target in TARGETS.items()
        if values[name] < target
    ]
