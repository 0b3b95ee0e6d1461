"""What a study config asks of Optuna's search: its sampler, its pruner, its directions."""

from __future__ import annotations

from harness.configs.study import StudyConfig


def create_sampler(config: StudyConfig, seed: int | None = None):
    """The config's sampler, seeded with ``seed`` (default: the study's seed).

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> type(create_sampler(config)).__name__
        'TPESampler'
    """
    import optuna

    s = config.sampler
    seed = config.seed if seed is None else seed
    if s.type == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=s.multivariate,
            constant_liar=s.constant_liar,
            n_startup_trials=s.n_startup_trials,
        )
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.type == "grid":
        grid = {name: list(d.choices) for name, d in config.search_space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.n_startup_trials)


def create_pruner(config: StudyConfig):
    """The config's pruner; Optuna prunes single-objective studies only, so a
    two-objective study gets none.

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> type(create_pruner(config)).__name__
        'MedianPruner'
    """
    import optuna

    p = config.pruner
    if p.type == "median" and not config.objective.multi:
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
        )
    if p.type == "hyperband" and not config.objective.multi:
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def directions(config: StudyConfig) -> list[str]:
    """The study's Optuna directions: the objective's, then (two objectives) the circuit
    size's, minimised.

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> directions(config)
        ['maximize']
    """
    first = "maximize" if config.objective.maximize else "minimize"
    return [first, "minimize"] if config.objective.multi else [first]
