"""``harness score``: run one algorithm once on a task (or read an MIB circuit file) and
score it: ROC AUC against every ground truth, MIB's CPR and CMD, optional CSV and MIB
files of the edge scores."""

from __future__ import annotations

import argparse
import csv
from typing import Any

from harness.cli.errors import UsageError
from harness.cli.inputs import parse_assignments, writable_dir


def command(args: argparse.Namespace) -> int:
    """Check everything the user typed, load the task, run and score; print the results."""
    from harness.algorithms import get_algorithm
    from harness.algorithms.params import check_seed
    from harness.evaluation.run_one import check_parameters, run_algorithm
    from harness.tasks import get_task_spec, load
    from harness.tasks.base import check_metric_supported, check_task_options

    params = parse_assignments(args.param)
    algo = _score_algorithm(args, params)
    # everything the user typed is checked before the task loads (seconds) or runs
    task_spec = get_task_spec(args.task)
    check_task_options(task_spec, _task_options(args), "--device")
    check_parameters(get_algorithm(algo), params, where="--param ")
    check_metric_supported(task_spec, params)
    check_seed(args.seed, "--seed")
    for flag, path, kind in (("--out", args.out, "CSV"), ("--mib-out", args.mib_out, "JSON")):
        if path:
            if path.is_dir():
                raise UsageError(f"{flag} {str(path)!r} is a directory: give a {kind} file name")
            writable_dir(path.parent, flag)
    for path in (args.out, args.mib_out):  # made now: a result must not be lost after the run
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
    task = load(args.task, **_task_options(args))
    result = run_algorithm(task, algo, params, args.seed, args.ground_truth)
    shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
    memory = (
        f", peak memory {result.peak_memory_mb:.0f} MiB ({result.peak_memory_kind})"
        if result.peak_memory_mb is not None
        else ""
    )
    print(f"{algo} on {args.task} ({shown}; seed {args.seed}): {result.seconds:.2f} s{memory}")
    if result.scores.semantics is not None:
        print(f"mode: {result.scores.semantics}")
    print(f"{'ground truth':<14} {'edges':>6} {'AUC (score-trapezoid)':>22}")
    for name, roc in result.rocs.items():
        print(f"{name:<14} {len(task.official_edges(name)):>6} {roc.auc:>22.4f}")
    _print_mib_metrics(task, algo, params, result.scores)
    if args.out:
        with args.out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["edge", "score"])
            writer.writerows(result.scores.as_dict().items())
        print(f"scores written to {args.out}")
    if args.mib_out:
        from harness.interop.mib_files import write_mib_circuit

        write_mib_circuit(args.mib_out, task.patchable, result.scores)
        print(f"MIB circuit written to {args.mib_out}")
    return 0


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The task's load options from ``--device`` and ``--model-path``.

    Example:
        >>> _task_options(argparse.Namespace(device="cpu", model_path=None))
        {'device': 'cpu'}
    """
    options: dict[str, Any] = {"device": args.device}
    if args.model_path:
        options["model_path"] = args.model_path
    return options


def _score_algorithm(args: argparse.Namespace, params: dict[str, Any]) -> str:
    """The algorithm ``score`` runs: ``--algo``, or ``import`` for ``--mib-in`` (whose file
    is read and checked here, before the task loads)."""
    if args.mib_in is None:
        if args.algo is None:
            raise UsageError("give --algo ALGORITHM, or --mib-in FILE to score an MIB circuit")
        return args.algo
    if args.algo not in (None, "import"):
        raise UsageError(f"--mib-in scores a file: give no --algo (got {args.algo!r})")
    if "path" in params:
        raise UsageError("give the MIB file once: --mib-in FILE, not also --param path=...")
    from harness.interop.mib_files import load_mib_file

    load_mib_file(args.mib_in)
    params["path"] = str(args.mib_in)
    return "import"


def _print_mib_metrics(task, algo: str, params: dict[str, Any], scores) -> None:
    """MIB's CPR and CMD of ``scores`` on the task's test batches, in one line."""
    from harness.evaluation.mib import mib_metrics
    from harness.study.objective import default_ablation

    ablation = params.get("ablation") or default_ablation(algo)
    mib = mib_metrics(task.patchable, task.test, scores, ablation)
    print(
        f"MIB (test batches, {ablation} ablation, m = {mib.measure}): "
        f"CPR {mib.cpr:.4f} (edges ranked by signed score, higher is better), "
        f"CMD {mib.cmd:.4f} (ranked by |score|, lower is better)"
    )
