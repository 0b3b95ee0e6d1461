"""The ``harness`` command line.

Bad input exits with code 2 and one line on stderr, never a traceback. A run that the
machine stops (a full or read-only disk under the records or the storage, a storage that
fails, a worker process that fails) exits with code 1 and one line; what finished before
is kept, and the trial it cut runs again on resume. Ctrl-C exits with code 130.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """An error in what the user asked for: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``harness: error: ...``), not a usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"harness: error: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


# OSErrors that describe the user's files or machine (a read-only or full disk, a file
# where a directory should be), reported in one line; any other error is a bug and
# keeps its traceback.
_ENVIRONMENT_ERRNOS = {"EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR", "EISDIR"}


def _environment_error(error: OSError) -> bool:
    import errno

    return error.errno is not None and errno.errorcode.get(error.errno) in _ENVIRONMENT_ERRNOS


def writable_dir(path: Path, what: str) -> None:
    """A one-line UsageError naming ``what`` unless files can be written in ``path`` (or, if
    it does not exist yet, created under its nearest existing ancestor), so that a
    read-only or impossible directory is refused before any work is done. Creates nothing:
    it writes and removes a nameless probe file.

    Example:
        >>> import tempfile
        >>> writable_dir(Path(tempfile.mkdtemp()) / "new" / "dir", "--out")
        >>> a_file = Path(tempfile.mkstemp()[1])
        >>> writable_dir(a_file / "dir", "--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        harness.cli.UsageError: cannot write to --out '.../dir': Not a directory
    """
    import tempfile

    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"cannot write to {what} {str(path)!r}: {reason}") from None


def parse_assignments(pairs: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "mask_fn=sigmoid"]`` -> ``{"lr": 0.1, "mask_fn": "sigmoid"}`` (YAML values).

    Example:
        >>> parse_assignments(["epochs=5", "tree_optimisation=true", "ablation=zero"])
        {'epochs': 5, 'tree_optimisation': True, 'ablation': 'zero'}
    """
    from harness.configs.safe_yaml import load_yaml

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {pair!r}")
        try:
            result[key.strip()] = load_yaml(value, key.strip()) if value.strip() else ""
        except ValueError as error:
            raise UsageError(f"cannot read the value of {key.strip()!r}: {error}") from None
    return result


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (no usage block); ``--help`` is unchanged."""

    def error(self, message: str):
        flat = " ".join(message.split())
        self.exit(2, f"harness: error: {flat} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Sweeps and benchmarks for circuit discovery.")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; 1 is fastest for tiny models on a busy machine)",
    )
    parser.add_argument(
        "--tasks-from",
        action="append",
        default=[],
        metavar="FILE",
        help="a Python file that registers tasks (harness.tasks.register_tracr_program); "
        "repeatable; also HARNESS_TASKS_FROM (paths separated by ':')",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="SP on a model with a planted circuit")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--mode",
        choices=["corrupt-run", "tree", "restore-clean"],
        default="corrupt-run",
        help="SP's mode (corrupt-run: the reference's defaults)",
    )

    ls = commands.add_parser("ls", help="list studies, tasks or algorithms")
    ls.add_argument("what", choices=["studies", "tasks", "algorithms"])
    ls.add_argument("--studies-dir", type=Path, default=Path("studies"))

    tasks = commands.add_parser("tasks", help="build or check the tracr weights in the package")
    tasks_commands = tasks.add_subparsers(dest="tasks_command", required=True)
    build = tasks_commands.add_parser(
        "build", help="recompile tracr programs from RASP and write their weights and circuits"
    )
    build.add_argument("names", nargs="*", help="tasks or programs (default: the tracr suite)")
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a recompiled program differs from its file",
    )
    build.add_argument("--dir", type=Path, help="weights directory (default: the package's)")
    table = tasks_commands.add_parser("table", help="a Markdown table of the shipped tracr tasks")
    table.add_argument("names", nargs="*", help="tasks or programs (default: the tracr suite)")

    def study_options(command: argparse.ArgumentParser, storage_required: bool = False) -> None:
        command.add_argument("study", type=Path, help="a study YAML file")
        command.add_argument(
            "--storage",
            required=storage_required,
            help="Optuna storage URL (default: sqlite file under runs/)",
        )
        command.add_argument("--n-trials", type=int, help="finished trials the study should have")
        command.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
        command.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            dest="overrides",
            help="override a config key (dotted keys reach nested fields)",
        )
        command.add_argument("--wandb", choices=["offline", "online", "disabled"])
        command.add_argument("--runs-dir", type=Path, help="records and default storage root")
        command.add_argument("--no-progress", action="store_true")
        command.add_argument(
            "--allow-config-change",
            action="store_true",
            help="resume a study created with another config (recorded in the study)",
        )

    run = commands.add_parser("run", help="create or resume a study and run it")
    study_options(run)
    run.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    run.add_argument(
        "--batch-trials",
        type=int,
        default=1,
        metavar="K",
        help="train K SP trials in one pass (one process)",
    )
    run.add_argument("--report-dir", type=Path, default=Path("reports"))
    run.add_argument(
        "--no-heldout",
        action="store_true",
        help="skip the held-out runs of the best settings after the search",
    )
    worker = commands.add_parser("worker", help="join a running study from another process")
    study_options(worker, storage_required=True)
    status = commands.add_parser("status", help="a table of a study's trials")
    status.add_argument("study", type=Path, help="a study YAML file")
    status.add_argument("--storage")
    status.add_argument("--runs-dir", type=Path)
    compare = commands.add_parser("compare", help="methods side by side (a kind: compare config)")
    compare.add_argument("study", type=Path, help="a comparison YAML file")
    compare.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")
    compare.add_argument("--runs-dir", type=Path, help="records root (default runs/)")
    compare.add_argument("--report-dir", type=Path, default=Path("reports"))
    compare.add_argument("--no-progress", action="store_true")
    transfer = commands.add_parser(
        "transfer", help="tune SP on train tasks, score it on test tasks (a kind: transfer config)"
    )
    transfer.add_argument("study", type=Path, metavar="CONFIG")
    transfer.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")
    transfer.add_argument("--runs-dir", type=Path, help="records root (default runs/)")
    transfer.add_argument("--report-dir", type=Path, default=Path("reports"))
    transfer.add_argument("--no-progress", action="store_true")
    report = commands.add_parser("report", help="tables and figures from studies' records")
    report.add_argument(
        "studies", nargs="+", metavar="STUDY", help="a study or comparison YAML, or a study name"
    )
    report.add_argument("--out", type=Path, help="output directory (default reports/NAME)")
    report.add_argument("--runs-dir", type=Path, help="records root (default runs/)")
    validate = commands.add_parser("validate", help="check a study config without running it")
    validate.add_argument("study", type=Path)
    validate.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")

    score = commands.add_parser("score", help="run one algorithm once on a task and score it")
    score.add_argument("--task", required=True)
    score.add_argument("--algo", help="the algorithm (not needed with --mib-in)")
    score.add_argument("--ground-truth", default=None, help="the circuit the oracle returns")
    score.add_argument("--param", action="append", metavar="KEY=VALUE", help="hyperparameter")
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--out", type=Path, help="write edge,score rows to this CSV file")
    score.add_argument("--device", default="auto")
    score.add_argument("--model-path", default=None, help="local weights (GPT-2 tasks)")
    score.add_argument("--mib-out", type=Path, help="write the scores as an MIB circuit JSON file")
    score.add_argument(
        "--mib-in", type=Path, help="score an MIB circuit JSON file (the `import` algorithm)"
    )
    return parser


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"device": args.device}
    if args.model_path:
        options["model_path"] = args.model_path
    return options


def _load_study(args: argparse.Namespace):
    from harness.configs.study import load_config
    from harness.study.driver import preflight

    overrides = parse_assignments(getattr(args, "overrides", None))
    if getattr(args, "wandb", None):
        overrides["wandb.mode"] = args.wandb
    config = load_config(args.study, overrides)
    preflight(config)
    return config


def _cmd_run(args: argparse.Namespace, worker: bool = False) -> int:
    from harness.records.check import check_records_file
    from harness.records.store import read_records
    from harness.reporting.study_summary import write_summary
    from harness.study.driver import RUNS_DIR, records_path, run_study, run_worker
    from harness.study.heldout import heldout_line, heldout_lines
    from harness.study.runtime.storage_urls import check_storage_url

    config = _load_study(args)
    runs_dir = args.runs_dir or RUNS_DIR
    if args.n_trials is not None and args.n_trials < 1:
        raise UsageError(f"--n-trials must be >= 1, got {args.n_trials}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if not worker:
        if args.jobs < 1:
            raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
        if args.batch_trials < 1 or (args.batch_trials > 1 and args.jobs > 1):
            raise UsageError("--batch-trials K needs K >= 1 and --jobs 1")
        if args.batch_trials > 1:
            from harness.study.driver import check_batchable

            check_batchable(config)
    # everything refusable is refused before the storage or any directory is created
    check_storage_url(args.storage or config.storage_url(runs_dir))
    writable_dir(records_path(config, runs_dir).parent, "the runs directory")
    check_records_file(records_path(config, runs_dir))
    if not worker:
        writable_dir(args.report_dir / config.name, "--report-dir")
    if worker:
        run_worker(
            config,
            args.storage,
            args.n_trials,
            args.timeout,
            runs_dir,
            allow_config_change=args.allow_config_change,
        )
        print(f"worker done: study {config.name}")
        return 0
    outcome = run_study(
        config,
        args.storage,
        args.n_trials,
        args.timeout,
        args.jobs,
        runs_dir,
        progress=not args.no_progress,
        batch_trials=args.batch_trials,
        allow_config_change=args.allow_config_change,
        heldout=not args.no_heldout,
    )
    records = read_records(outcome.records_path)
    heldout = heldout_lines(config, outcome.records_path)
    summary = write_summary(
        args.report_dir / config.name / "summary.md",
        config.name,
        records,
        config.ground_truth,
        heldout,
    )
    print(f"study {config.name}: {outcome.n_finished} finished trials in {outcome.storage}")
    if outcome.best_value is not None:
        print(f"best objective {outcome.best_value:.4f} with {outcome.best_params}")
    line = heldout_line(heldout)
    if line:
        print(line)
    print(f"records: {outcome.records_path}\nsummary: {summary}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from harness.records.check import check_records_file
    from harness.records.store import read_records
    from harness.study.driver import RUNS_DIR, load_existing_study, records_path
    from harness.study.runtime.storage_urls import mask_password

    config = _load_study(args)
    runs_dir = args.runs_dir or RUNS_DIR
    url = args.storage or config.storage_url(runs_dir)
    study = load_existing_study(config, url)
    records_file = records_path(config, runs_dir)
    check_records_file(records_file)
    records = {r["trial"]: r for r in read_records(records_file)}
    gt = config.ground_truth
    print(f"study {config.name} ({mask_password(url)})")
    print(
        f"{'#':>4} {'state':<9} {'AUC':>7} {'KL@k':>9} {'edges':>6} {'seconds':>8}  params / reason"
    )
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
            f"{t.number:>4} {t.state.name:<9} {_num(auc, 7, 4)} {_num(kl, 9, 3, 'e')} "
            f"{_num(r.get('circuit_size'), 6, 0)} {_num(r.get('seconds'), 8, 1)}  {detail}"
        )
    if missing:
        shown = ", ".join(str(n) for n in sorted(missing))
        print(f"warning: finished trials without a record in {records_file}: {shown}")
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


def _num(value, width: int, digits: int, kind: str = "f") -> str:
    if value is None:
        return f"{'–':>{width}}"
    return f"{value:>{width}.{digits}{kind}}"


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.benchmark.compare import (
        comparison_markdown,
        comparison_table,
        preflight_compare,
        run_compare,
    )
    from harness.configs.compare import load_compare_config
    from harness.study.driver import RUNS_DIR

    config = load_compare_config(args.study, parse_assignments(args.overrides))
    preflight_compare(config)
    out = args.report_dir / config.name
    writable_dir(out, "--report-dir")
    writable_dir((args.runs_dir or RUNS_DIR) / config.name, "the runs directory")
    records = run_compare(config, args.runs_dir or RUNS_DIR, progress=not args.no_progress)
    failed = [r for r in records if r["state"] == "FAIL"]
    table = comparison_table(records, config.bootstrap_samples)
    markdown = comparison_markdown(config.name, table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(markdown)
    table.to_csv(out / "comparison.csv", index=False)
    print(markdown)
    for r in failed:
        print(
            f"FAILED {r['algorithm']} on {r['task']} ({r['params'].get('ablation')}, seed "
            f"{r['seed']}): {r['fail_reason']}"
        )
    print(f"table: {out / 'comparison.md'} and comparison.csv")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from harness.benchmark.transfer import preflight_transfer, run_transfer
    from harness.configs.transfer import load_transfer_config
    from harness.reporting.report import load_source, method_runs
    from harness.reporting.transfer_table import transfer_markdown
    from harness.study.driver import RUNS_DIR

    config = load_transfer_config(args.study, parse_assignments(args.overrides))
    preflight_transfer(config)
    runs_dir = args.runs_dir or RUNS_DIR
    out = args.report_dir / config.name
    writable_dir(out, "--report-dir")
    writable_dir(runs_dir / config.name, "the runs directory")
    records = run_transfer(config, runs_dir, progress=not args.no_progress)
    source = load_source(str(args.study), runs_dir)
    markdown = transfer_markdown(config, method_runs([source]), config.bootstrap_samples)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.md").write_text(markdown)
    print(markdown)
    for r in records:
        if r["state"] == "FAIL":
            print(f"FAILED {r['method']} on {r['task']} (seed {r['seed']}): {r['fail_reason']}")
    print(f"table: {out / 'transfer.md'}; records: {runs_dir / config.name / 'transfer.jsonl'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.reporting.report import build_report, load_source
    from harness.study.driver import RUNS_DIR

    runs_dir = args.runs_dir or RUNS_DIR
    sources = [load_source(str(spec), runs_dir) for spec in args.studies]
    out = args.out or Path("reports") / "+".join(dict.fromkeys(s.name for s in sources))
    writable_dir(out, "the report directory")
    result = build_report(sources, out)
    if result.warning:
        print(f"harness: warning: {result.warning}", file=sys.stderr)
    per_figure = (
        f", {result.seconds_per_figure:.2f} s per static figure"
        if result.seconds_per_figure is not None
        else ""
    )
    print(f"report: {out / 'index.html'} and {out / 'report.md'}")
    print(f"{len(result.files)} files in {result.seconds:.1f} s{per_figure}")
    return 0


def _config_kind(path: Path) -> str | None:
    """A config's ``kind`` (``compare``, ``transfer``; None for a study or unreadable)."""
    from harness.configs.safe_yaml import read_yaml_file

    try:
        data = read_yaml_file(path)
    except (OSError, ValueError):
        return None  # the study loader reports the problem
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in ("compare", "transfer") else None


def _is_comparison(path: Path) -> bool:
    return _config_kind(path) == "compare"


def _cmd_validate(args: argparse.Namespace) -> int:
    if _is_comparison(args.study):
        from harness.benchmark.compare import preflight_compare
        from harness.configs.compare import load_compare_config

        comparison = load_compare_config(args.study, parse_assignments(args.overrides))
        preflight_compare(comparison)
        print(
            f"ok: comparison {comparison.name}: {', '.join(comparison.methods)} on "
            f"{', '.join(comparison.tasks)}; ablations {', '.join(comparison.ablations)}; "
            f"{len(comparison.seeds)} seeds"
        )
        return 0
    if _config_kind(args.study) == "transfer":
        from harness.benchmark.transfer import preflight_transfer
        from harness.configs.transfer import load_transfer_config

        transfer = load_transfer_config(args.study, parse_assignments(args.overrides))
        preflight_transfer(transfer)
        split = f"{transfer.folds} folds" if transfer.folds else f"{len(transfer.test_tasks)} test"
        print(
            f"ok: transfer {transfer.name}: SP searched on {len(transfer.train_tasks)} train "
            f"tasks ({transfer.n_trials} trials, objective {transfer.objective.metric}), "
            f"{split} tasks, {len(transfer.seeds)} seeds"
        )
        return 0
    config = _load_study(args)
    searched = ", ".join(config.search_space) or "nothing"
    print(
        f"ok: study {config.name}: {config.algorithm} on {config.task_label}, "
        f"searching {searched}; "
        f"{config.n_trials} trials, sampler {config.sampler.type}, pruner {config.pruner.type}"
    )
    return 0


def _tasks_cell(tasks: list[str]) -> str:
    return ",".join(tasks) if len(tasks) <= 3 else f"{len(tasks)} tasks"


def _cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "studies":
        from harness.configs.compare import load_compare_config
        from harness.configs.study import load_config

        if not args.studies_dir.is_dir():
            raise UsageError(f"--studies-dir {str(args.studies_dir)!r} is not a directory")
        rows = []
        for path in sorted(args.studies_dir.glob("*.yaml")):
            try:
                if _is_comparison(path):
                    comparison = load_compare_config(path)
                    rows.append((comparison.name, "compare", _tasks_cell(comparison.tasks), path))
                    continue
                if _config_kind(path) == "transfer":
                    from harness.configs.transfer import load_transfer_config

                    transfer = load_transfer_config(path)
                    tasks = _tasks_cell(transfer.train_tasks + transfer.test_tasks)
                    rows.append((transfer.name, "transfer", tasks, path))
                    continue
                config = load_config(path)
                rows.append((config.name, config.algorithm, config.task_label, path))
            except ValueError as error:
                rows.append((path.stem, "invalid", "", str(error)))
        widths = [max((len(str(row[i])) for row in rows), default=0) for i in range(3)]
        for *cells, last in rows:
            print(*(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)), last)
        return 0
    if args.what == "algorithms":
        from harness.algorithms import ALGORITHMS
        from harness.evaluation.run_one import algorithm_parameters

        for spec in ALGORITHMS.values():
            params = ", ".join(algorithm_parameters(spec))
            print(f"{spec.slug:<8} {spec.label:<24} {params}")
        return 0
    from harness.tasks import task_specs

    header = ("task", "layers", "heads", "edges", "ground truths (edges)", "runs here")
    print(f"{header[0]:<24} {header[1]:>6} {header[2]:>5} {header[3]:>6}  {header[4]:<28} "
          f"{header[5]:<13} description")  # fmt: skip
    for spec in task_specs().values():
        summary = spec.summary() if spec.summary is not None else {}
        sizes = summary.get("circuits", {})  # tracr files name acdc-zero "zero"
        counts = [
            sizes.get(name, sizes.get(name.removeprefix("acdc-"))) for name in spec.ground_truths
        ]
        truths = ", ".join(
            name if n is None else f"{name} ({n})"
            for name, n in zip(spec.ground_truths, counts, strict=True)
        )
        cells = [str(summary.get(key, "-")) for key in ("layers", "heads", "edges")]
        here = "needs weights" if spec.needs_weights else "yes"
        print(f"{spec.slug:<24} {cells[0]:>6} {cells[1]:>5} {cells[2]:>6}  {truths:<28} "
              f"{here:<13} {spec.description}")  # fmt: skip
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from harness.tasks.tracr.build import build_files, check_files, resolve_programs, suite_table

    programs = resolve_programs(args.names)  # bad names: one line, exit 2, before compiling
    if args.tasks_command == "table":
        print(suite_table(programs))
        return 0
    if args.dir is not None and not args.check:
        writable_dir(args.dir, "--dir")
    if args.check:
        differences = check_files(programs, args.dir)
        if differences:
            listed = "; ".join(f"tracr-{p}: {what}" for p, what in differences.items())
            print(
                f"harness: tracr weights differ from a fresh compile ({len(differences)} of "
                f"{len(programs)}): {listed}",
                file=sys.stderr,
            )
            return 1
        print(f"{len(programs)} tracr weight files identical to a fresh compile")
        return 0
    for path in build_files(programs, args.dir):
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
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
    from harness.evaluation.mib import mib_metrics
    from harness.study.objective import default_ablation

    ablation = params.get("ablation") or default_ablation(algo)
    mib = mib_metrics(task.patchable, task.test, scores, ablation)
    print(
        f"MIB (test batches, {ablation} ablation, m = {mib.measure}): "
        f"CPR {mib.cpr:.4f} (edges ranked by signed score, higher is better), "
        f"CMD {mib.cmd:.4f} (ranked by |score|, lower is better)"
    )


def _halting_errors() -> tuple[type[Exception], ...]:
    from harness.records.store import RecordWriteError
    from harness.study.runtime.failures import StorageError
    from harness.study.runtime.processes import WorkerError

    return (RecordWriteError, StorageError, WorkerError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``harness``; returns the exit code."""
    import signal
    import threading
    import warnings

    from harness.study.runtime.interrupts import (
        Terminated,
        forget_unhandled_interrupt,
        raise_on_sigterm,
        redelivering_lost_stops,
    )
    from harness.util.notices import one_line_warnings

    default_format = warnings.formatwarning
    one_line_warnings()
    default_sigterm = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops like Ctrl-C
        default_sigterm = signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        with redelivering_lost_stops():
            return _main(argv)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated), wherever it landed
        forget_unhandled_interrupt()
        if isinstance(stop, Terminated):
            print("harness: terminated", file=sys.stderr)
            return 143
        print("harness: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = default_format
        if default_sigterm is not None:
            signal.signal(signal.SIGTERM, default_sigterm)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print(f"harness: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.tasks_from:
            from harness.tasks.task_files import add_task_files

            add_task_files(args.tasks_from)
        if args.command == "demo":
            from harness.testing.demo import run_demo

            ok = run_demo(sys.stdout, args.epochs, args.mode, args.seed)
            return 0 if ok else 1
        if args.command == "ls":
            return _cmd_ls(args)
        if args.command == "score":
            return _cmd_score(args)
        if args.command == "tasks":
            return _cmd_tasks(args)
        if args.command in ("run", "worker"):
            return _cmd_run(args, worker=args.command == "worker")
        if args.command == "status":
            return _cmd_status(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "transfer":
            return _cmd_transfer(args)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "report":
            return _cmd_report(args)
    except (UsageError, ValueError) as error:
        # ValueError is how the library refuses bad input (configs, parameters, storage
        # URLs, task options); anything else is a bug and keeps its traceback
        print(f"harness: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except _halting_errors() as error:  # the machine stopped the run, not the user's input
        print(f"harness: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except OSError as error:
        if not _environment_error(error):
            raise
        where = f": {str(error.filename)!r}" if error.filename else ""
        print(f"harness: error: {error.strerror}{where}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
