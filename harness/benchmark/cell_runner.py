"""Run cells in this process or in ``--jobs N`` worker processes, each cell once.

Cells run through joblib: in this process (``jobs=1``) or in N processes of its process
backend (loky), each with torch single-threaded; results are the same either way
(every cell is seeded, and its ``trial`` number is its place in the config). Each cell
runs under its claim (:mod:`harness.records.claims`); the process that holds it checks the
records first and runs the cell only if no record of it (with this definition) was
written since this run began. So two commands of one config at once, overlapping
``--shard`` processes and ``--jobs`` workers never run a cell twice: a cell claimed by
another live process is left to it, and waited for at the end (a claim whose process died
is free again, and the cell runs here).

The records file is the only shared state: a worker appends the record itself (under the
records' lock, :mod:`harness.records.store`) before it gives the claim up, so what
finished is on disk whatever happens next:

- Ctrl-C or SIGTERM stops the run (the command exits 130 or 143, one line); the cells cut
  short have no record and run on resume;
- a worker killed (``kill -9``, the OOM killer) is reported in one line and the run goes
  on in new workers (at most N times): its cell and those cut short with it run again;
- a record that cannot be written (a full disk) stops the run with that one line
  (:class:`harness.records.store.RecordWriteError`, exit code 1).
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from joblib.externals.loky.process_executor import TerminatedWorkerError

from harness.benchmark.cells import Cell, current_records, done_definitions, in_shard, is_done
from harness.records.claims import claimed, is_claimed
from harness.records.schema import TrialRecord
from harness.records.store import append_record, read_records, repair_torn_tail
from harness.study.runtime.processes import WorkerError
from harness.util.notices import notice, one_line_warnings

RAN, DONE, HELD = "ran", "done", "held"
CLAIMS_DIR = "claims"


def records_mark(records_file: Path) -> int:
    """Repair a torn tail of ``records_file`` and return its size: records after this
    byte are written while this run goes on. Take it before reading which cells are done,
    so that no record falls between the two.

    Example:
        >>> import tempfile
        >>> records_mark(Path(tempfile.mkdtemp()) / "trials.jsonl")
        0
    """
    repair_torn_tail(records_file)
    return records_file.stat().st_size if records_file.exists() else 0


def run_missing(
    cells: list[Cell],
    runner: Callable[[list[Cell]], Callable[[Cell], TrialRecord]],
    records_file: Path,
    since: int,
    jobs: int,
    progress: bool,
    shard: tuple[int, int] | None,
    name: str,
) -> list[dict[str, Any]]:
    """Run the cells of ``shard`` (all with ``None``) that have no COMPLETE record, with
    ``runner(cells to run)`` in ``jobs`` processes (:func:`run_cells`); return the records
    of all ``cells``, one per cell (:func:`harness.benchmark.cells.current_records`)."""
    mine = [cell for cell in cells if in_shard(cell, shard)]
    done = done_definitions(read_records(records_file))
    todo = [cell for cell in mine if not is_done(cell, done)]
    desc = name if shard is None else f"{name} {shard[0]}/{shard[1]}"
    run_one = runner(todo)
    run_cells(todo, run_one, records_file, since, jobs, progress, len(mine) - len(todo), desc)
    return current_records(cells, read_records(records_file))


def run_cells(
    cells: list[Cell],
    run_one: Callable[[Cell], TrialRecord],
    records_file: Path,
    since: int,
    jobs: int = 1,
    progress: bool = True,
    already: int = 0,
    desc: str | None = None,
) -> int:
    """Run each of ``cells`` once (see the module docstring); return how many ran here.

    Args:
        cells: The cells to run (those not done yet).
        run_one: Runs one cell and returns its record (a picklable callable for ``jobs``
            > 1); the cell's ``trial`` and ``config_hash`` are set here.
        records_file: Where records go (claims live beside it, in ``claims/``).
        since: :func:`records_mark` of ``records_file``, taken before ``cells`` were
            chosen: a record after it means its cell ran meanwhile elsewhere.
        jobs: Worker processes (1: this process).
        progress: Show a bar of cells done of all, with an ETA.
        already: Cells done before (the bar starts there).
        desc: The bar's label.

    Raises:
        RecordWriteError: A record could not be written.
        WorkerError: Workers died more than ``jobs`` times.
    """
    from tqdm.auto import tqdm

    claims = records_file.parent / CLAIMS_DIR
    bar = tqdm(
        total=already + len(cells), initial=already, desc=desc, unit="cell", disable=not progress
    )
    pending, finished, ran, deaths = list(cells), set(), 0, 0
    try:
        while pending:
            held: list[Cell] = []
            try:
                for cell, status in _run_pass(pending, run_one, records_file, since, jobs):
                    if status == HELD:
                        held.append(cell)
                        continue
                    finished.add(cell.name)
                    ran += status == RAN
                    bar.update(1)
            except TerminatedWorkerError as error:
                deaths += 1
                if deaths > jobs:
                    raise WorkerError(f"worker processes died {deaths} times: {error}") from None
                notice(
                    "a worker process died (killed, or out of memory); the cells it and the "
                    "others were running run again in new workers"
                )
                pending = [c for c in pending if c.name not in finished]
                continue
            if held:
                bar.set_postfix_str(f"waiting for {len(held)} cells another process runs")
                _wait_for(held, claims)
            pending = held
    finally:
        bar.close()
    return ran


def _run_pass(
    cells: list[Cell], run_one, records_file: Path, start: int, jobs: int
) -> Iterable[tuple[Cell, str]]:
    """Each cell with what became of it, in this process or ``jobs`` workers."""
    if jobs == 1:
        return ((cell, run_claimed(run_one, cell, records_file, start)) for cell in cells)
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    work = (delayed(_in_worker)(run_one, cell, records_file, start) for cell in cells)
    return parallel(work)


def run_claimed(run_one, cell: Cell, records_file: Path, start: int) -> str:
    """Claim ``cell``; if no record of it was written since byte ``start`` of
    ``records_file``, run it and append its record. Returns :data:`RAN`, :data:`DONE` or
    :data:`HELD` (another live process holds the claim)."""
    with claimed(records_file.parent / CLAIMS_DIR, cell.name) as mine:
        if not mine:
            return HELD
        if recorded_since(records_file, start, cell.definition):
            return DONE
        record = run_one(cell)
        record.trial, record.config_hash = cell.number, cell.definition
        append_record(records_file, record)
        return RAN


def _in_worker(run_one, cell: Cell, records_file: Path, start: int) -> tuple[Cell, str]:
    """:func:`run_claimed` in a worker process: torch single-threaded, one-line warnings."""
    import torch

    torch.set_num_threads(1)
    one_line_warnings()
    return cell, run_claimed(run_one, cell, records_file, start)


def recorded_since(records_file: Path, start: int, definition: str) -> bool:
    """Whether a record of ``definition`` was appended after byte ``start`` (a search of
    the new bytes for its ``config_hash``, not a parse: cheap on large files).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> _ = path.write_text('{"config_hash": "ab12"}\\n')
        >>> recorded_since(path, 0, "ab12"), recorded_since(path, 5, "ab12")
        (True, False)
    """
    needle = f'"config_hash": "{definition}"'.encode()
    try:
        with records_file.open("rb") as handle:
            size = handle.seek(0, 2)
            if size <= start:
                return False
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return data.find(needle, start) >= 0
    except FileNotFoundError:
        return False


def _wait_for(cells: list[Cell], claims: Path, poll: float = 0.5) -> None:
    """Until no live process holds a claim of ``cells`` (then they are done, or free)."""
    waiting = list(cells)
    while waiting:
        waiting = [c for c in waiting if is_claimed(claims, c.name)]
        if waiting:
            time.sleep(poll)
