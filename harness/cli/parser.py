"""The arguments of ``harness`` and of every subcommand (argparse), nothing else: building
the parser imports no module of the harness, so that ``harness --help`` starts at once.

Example:
    >>> args = build_parser().parse_args(["run", "s.yaml", "--jobs", "2"])
    >>> args.command, args.study.name, args.jobs, args.report_dir.name
    ('run', 's.yaml', 2, 'reports')
"""

from __future__ import annotations

import argparse
from pathlib import Path


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with its errors in one line (no usage block); ``--help`` is unchanged."""

    def error(self, message: str):
        flat = " ".join(message.split())
        self.exit(2, f"harness: error: {flat} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``harness``: global options, then one subparser per subcommand."""
    parser = OneLineErrorParser(
        prog="harness", description="Sweeps and benchmarks for circuit discovery."
    )
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
    _add_demo(commands)
    _add_ls(commands)
    _add_tasks(commands)
    _add_run(commands)
    _add_worker(commands)
    _add_storage_proxy(commands)
    _add_status(commands)
    _add_compare(commands)
    _add_transfer(commands)
    _add_report(commands)
    _add_validate(commands)
    _add_score(commands)
    return parser


def _add_demo(commands) -> None:
    demo = commands.add_parser("demo", help="SP on a model with a planted circuit")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--mode",
        choices=["corrupt-run", "tree", "restore-clean"],
        default="corrupt-run",
        help="SP's mode (corrupt-run: the reference's defaults)",
    )


def _add_ls(commands) -> None:
    ls = commands.add_parser("ls", help="list studies, tasks or algorithms")
    ls.add_argument("what", choices=["studies", "tasks", "algorithms"])
    ls.add_argument("--studies-dir", type=Path, default=Path("studies"))


def _add_tasks(commands) -> None:
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
    train = tasks_commands.add_parser(
        "train",
        help="train transformers with SIIT to implement tracr programs' circuits (siit-<program>)",
    )
    train.add_argument("names", nargs="+", help="tracr tasks or programs (tracr-hist or hist)")
    train.add_argument("--steps", type=int, default=6_000, help="optimiser steps at most")
    train.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    train.add_argument("--batch-size", type=int, default=256, help="base/source pairs a step")
    train.add_argument("--seed", type=int, default=0, help="seeds the model, the split, the draws")
    train.add_argument("--eval-every", type=int, default=250, help="steps between measurements")
    train.add_argument(
        "--strict-nodes",
        choices=("one", "subset", "all"),
        default="subset",
        help="outside nodes resampled in a step's strict loss: one (InterpBench's), a random "
        "subset of 1 to all (default), all",
    )
    train.add_argument("--dir", type=Path, help="where files go (default: the package's)")
    train.add_argument(
        "--checkpoint-dir", type=Path, help="resume a stopped training from its checkpoint here"
    )
    train.add_argument(
        "--check",
        action="store_true",
        help="retrain each named model with its file's settings and steps; exit 1 if it differs",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_study_options(command: argparse.ArgumentParser, storage_required: bool = False) -> None:
    """The options ``run`` and ``worker`` share."""
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


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="create or resume a study and run it")
    _add_study_options(run)
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


def _add_worker(commands) -> None:
    worker = commands.add_parser("worker", help="join a running study from another process")
    _add_study_options(worker, storage_required=True)


def _add_storage_proxy(commands) -> None:
    proxy = commands.add_parser(
        "storage-proxy",
        help="hold a study storage's database connections for many workers "
        "(they use --storage grpc://HOST:PORT)",
    )
    proxy.add_argument(
        "--storage", required=True, help="the database: postgresql://... (or sqlite:///FILE)"
    )
    proxy.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; the proxy has no authentication)",
    )
    proxy.add_argument("--port", type=int, default=13000, help="port (default 13000)")


def _add_status(commands) -> None:
    status = commands.add_parser("status", help="a table of a study's trials")
    status.add_argument("study", type=Path, help="a study YAML file")
    status.add_argument("--storage")
    status.add_argument("--runs-dir", type=Path)


def _add_compare(commands) -> None:
    compare = commands.add_parser("compare", help="methods side by side (a kind: compare config)")
    compare.add_argument("study", type=Path, help="a comparison YAML file")
    compare.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")
    compare.add_argument("--runs-dir", type=Path, help="records root (default runs/)")
    compare.add_argument("--report-dir", type=Path, default=Path("reports"))
    compare.add_argument("--no-progress", action="store_true")
    _add_cell_options(compare)


def _add_transfer(commands) -> None:
    transfer = commands.add_parser(
        "transfer", help="tune SP on train tasks, score it on test tasks (a kind: transfer config)"
    )
    transfer.add_argument("study", type=Path, metavar="CONFIG")
    transfer.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")
    transfer.add_argument("--runs-dir", type=Path, help="records root (default runs/)")
    transfer.add_argument("--report-dir", type=Path, default=Path("reports"))
    transfer.add_argument("--no-progress", action="store_true")
    _add_cell_options(transfer)


def _add_cell_options(command: argparse.ArgumentParser) -> None:
    """The options ``compare`` and ``transfer`` share: how their cells run."""
    command.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes for the cells on this machine (default: the config's jobs, 1)",
    )
    command.add_argument(
        "--shard",
        metavar="I/N",
        help="run share I of N of the cells (I from 0; a job array's index and count); "
        "N processes on N machines sharing the runs directory run all of them",
    )
    command.add_argument(
        "--allow-config-change",
        action="store_true",
        help="run again the cells whose definition changed since their records",
    )


def _add_report(commands) -> None:
    report = commands.add_parser("report", help="tables and figures from studies' records")
    report.add_argument(
        "studies", nargs="+", metavar="STUDY", help="a study or comparison YAML, or a study name"
    )
    report.add_argument("--out", type=Path, help="output directory (default reports/NAME)")
    report.add_argument("--runs-dir", type=Path, help="records root (default runs/)")


def _add_validate(commands) -> None:
    validate = commands.add_parser("validate", help="check a study config without running it")
    validate.add_argument("study", type=Path)
    validate.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides")


def _add_score(commands) -> None:
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
