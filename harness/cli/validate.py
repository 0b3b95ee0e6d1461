"""``harness validate``: check a config of any kind (study, comparison, transfer) without
running it, and say in one line what it would run."""

from __future__ import annotations

import argparse

from harness.cli.inputs import parse_assignments


def command(args: argparse.Namespace) -> int:
    """Load ``args.study`` with the loader of its kind and ``--set``, run its preflight and
    print ``ok: ...``; bad input raises a one-line error."""
    from harness.configs.loading import LOADERS, config_kind

    kind = config_kind(args.study)
    config = LOADERS[kind](args.study, parse_assignments(args.overrides))
    summary = {"compare": _comparison_ok, "transfer": _transfer_ok, "study": _study_ok}[kind]
    print(summary(config))
    return 0


def _comparison_ok(comparison) -> str:
    from harness.benchmark.compare import preflight_compare

    preflight_compare(comparison)
    return (
        f"ok: comparison {comparison.name}: {', '.join(comparison.methods)} on "
        f"{', '.join(comparison.tasks)}; ablations {', '.join(comparison.ablations)}; "
        f"{len(comparison.seeds)} seeds"
    )


def _transfer_ok(transfer) -> str:
    from harness.benchmark.transfer import preflight_transfer

    preflight_transfer(transfer)
    split = f"{transfer.folds} folds" if transfer.folds else f"{len(transfer.test_tasks)} test"
    return (
        f"ok: transfer {transfer.name}: SP searched on {len(transfer.train_tasks)} train "
        f"tasks ({transfer.n_trials} trials, objective {transfer.objective.metric}), "
        f"{split} tasks, {len(transfer.seeds)} seeds"
    )


def _study_ok(config) -> str:
    from harness.study.driver import preflight

    preflight(config)
    searched = ", ".join(config.search_space) or "nothing"
    return (
        f"ok: study {config.name}: {config.algorithm} on {config.task_label}, "
        f"searching {searched}; "
        f"{config.n_trials} trials, sampler {config.sampler.type}, pruner {config.pruner.type}"
    )
