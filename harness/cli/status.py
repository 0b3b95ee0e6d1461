"""``harness status``: a table of a study's trials (state, AUC, KL, size, time, params or
the reason it failed), then its best trial and held-out line."""

from __future__ import annotations

import argparse

from harness.cli.inputs import load_study


def command(args: argparse.Namespace) -> int:
    """Print the trials of the study of ``args.study`` (read from its storage and records)."""
    from harness.records.check import check_records_file
    from harness.records.store import read_records
    from harness.study.driver import RUNS_DIR, load_existing_study, records_path
    from harness.study.runtime.storage_urls import mask_password

    config = load_study(args)
    runs_dir = args.runs_dir or RUNS_DIR
    url = args.storage or config.storage_url(runs_dir)
    study = load_existing_study(config, url)
    records_file = records_path(config, runs_dir)
    check_records_file(records_file)
    records = {r["trial"]: r for r in read_records(records_file)}
    print(f"study {config.name} ({mask_password(url)})")
    print(
        f"{'#':>4} {'state':<9} {'AUC':>7} {'KL@k':>9} {'edges':>6} {'seconds':>8}  params / reason"
    )
    _print_trials(study, records, config.ground_truth, records_file)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete and not config.objective.multi:
        best = study.best_trial
        print(f"best: trial {best.number}, objective {best.value:.4f}, params {best.params}")
        from harness.study.heldout import heldout_line, heldout_lines

        line = heldout_line(heldout_lines(config, records_file))
        print(line or "held-out: not run yet (it runs after the search; see --no-heldout)")
    elif complete:
        print(f"Pareto front: trials {[t.number for t in study.best_trials]}")
    return 0


def _print_trials(study, records: dict[int, dict], gt: str | None, records_file) -> None:
    """One row per trial (surplus trials left out), then a warning naming finished trials
    that have no record."""
    from harness.study.status import missing_records, trial_detail

    trials = study.get_trials(deepcopy=False)
    missing = set(missing_records(trials, records))
    for t in trials:
        if t.user_attrs.get("surplus"):
            continue
        r = records.get(t.number, {})
        aucs = r.get("auc", {})
        auc = aucs.get(gt or next(iter(aucs), ""), {}).get("score-trapezoid")
        kl = r.get("faithfulness", {}).get("kl_div")
        detail = trial_detail(t, trials, r)
        if t.number in missing:
            detail = f"NO RECORD; {detail}"
        print(
            f"{t.number:>4} {t.state.name:<9} {_cell(auc, 7, 4)} {_cell(kl, 9, 3, 'e')} "
            f"{_cell(r.get('circuit_size'), 6, 0)} {_cell(r.get('seconds'), 8, 1)}  {detail}"
        )
    if missing:
        shown = ", ".join(str(n) for n in sorted(missing))
        print(f"warning: finished trials without a record in {records_file}: {shown}")


def _cell(value, width: int, digits: int, kind: str = "f") -> str:
    """A number right-aligned in ``width`` characters, or a dash for None.

    Example:
        >>> _cell(0.91234, 7, 4), _cell(None, 7, 4)
        (' 0.9123', '      –')
    """
    if value is None:
        return f"{'–':>{width}}"
    return f"{value:>{width}.{digits}{kind}}"
