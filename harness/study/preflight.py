"""A study config checked against the registries before anything runs."""

from __future__ import annotations

from harness.algorithms import get_algorithm
from harness.algorithms.params import check_distribution, check_point
from harness.configs.study import StudyConfig
from harness.evaluation.run_one import check_parameters
from harness.tasks import get_task_spec
from harness.tasks.base import check_metric_supported, check_task_options
from harness.util.did_you_mean import did_you_mean


def preflight(config: StudyConfig) -> None:
    """Check names against the registries before anything runs (one-line ValueErrors).

    Raises:
        ValueError: One line, for a ground truth, task option, algorithm parameter, search
            space or enqueued point that the task or the algorithm does not have.

    Example:
        >>> config = StudyConfig.model_validate(
        ...     {"name": "s", "task": "tracr-reverse", "ground_truth": "resampel"})
        >>> preflight(config)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: task 'tracr-reverse' has no ground truth 'resampel' (it has: ...
    """
    specs = [get_task_spec(name) for name in config.task_names()]
    for spec in specs:
        known = (*spec.ground_truths, *spec.ground_truth_aliases)
        if config.ground_truth is not None and config.ground_truth not in known:
            hint = did_you_mean(config.ground_truth, known)
            raise ValueError(
                f"task {spec.slug!r} has no ground truth {config.ground_truth!r} "
                f"(it has: {', '.join(spec.ground_truths)}){hint}"
            )
        check_task_options(spec, config.task_options, "task_options")
    if len(specs) > 1 and config.ground_truth is None and config.objective.metric == "roc_auc":
        raise ValueError(
            f"a study over {len(specs)} tasks optimising roc_auc needs a ground_truth that "
            "every task has (e.g. resample or zero)"
        )
    algorithm = get_algorithm(config.algorithm)
    check_parameters(algorithm, config.search_space, values=False, where="search_space: ")
    check_parameters(algorithm, config.params, where="params: ")
    for name, dist in config.search_space.items():
        check_distribution(config.algorithm, name, dist)
    for spec in specs:
        check_metric_supported(spec, config.params)
    for i, params in enumerate(config.enqueue):
        check_point(config.algorithm, params, config.search_space, f"enqueue[{i}]: ")
