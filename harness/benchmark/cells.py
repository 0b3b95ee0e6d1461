"""Cells: the unit of work of comparisons and transfers, and what makes two cells the same.

A cell is one run of one method on one task under one ablation and seed (and, in a k-fold
transfer, one fold). It has

- a **key** (:func:`harness.records.selection.cell_key` of its record): which cell it is;
  records of one key are repeats of one cell, never extra seeds;
- a **name**, a stable hash of the key: its claim file and its shard;
- a **definition**, a hash of everything that decides what the cell computes (the
  method's parameters and sweep, the task's options, ablation, seed...), stored in its
  record's ``config_hash``: a record whose key matches but whose definition does not was
  made under another config, and a resume refuses it unless the user allows the change
  (:func:`check_changes`), as studies do;
- a **number**, its place in the config's order of cells: its record's ``trial``, the same
  whichever process runs it, and in whatever order.

``--shard I/N`` runs the cells whose name falls in share I of N (:func:`in_shard`): a hash
of the key, not a position, so shares stay the same when a run resumes or seeds are added.

Example:
    >>> cell = Cell(("eap", "tracr-reverse", "resample", 0, None), 3, {"params": {}})
    >>> cell.name == Cell(cell.key, 9, {"other": 1}).name, len(cell.definition)
    (True, 16)
    >>> parse_shard("2/3"), [in_shard(cell, (i, 3)) for i in range(3)].count(True)
    ((2, 3), 1)
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from harness.records.selection import cell_key, one_per_cell
from harness.tasks import load as load_task


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One cell of a comparison or transfer (see the module docstring).

    Attributes:
        key: ``(method, task, ablation, seed, fold)``, as :func:`cell_key` reads a record.
        number: Its place in the config's order (its record's ``trial``).
        spec: What defines it beyond the key (parameters, sweep, task options...).
    """

    key: tuple[Any, ...]
    number: int
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        """A stable hash of the key: the claim's file name and the shard's draw."""
        return _digest(list(self.key))

    @property
    def definition(self) -> str:
        """A hash of the key and the spec: what the cell computes."""
        return _digest({"key": list(self.key), "spec": self.spec})

    def describe(self) -> str:
        """The cell in words, for messages.

        Example:
            >>> Cell(("sp", "t", "zero", 1, None), 0, {}).describe()
            'sp on t (zero, seed 1)'
        """
        method, task, ablation, seed, fold = self.key
        where = f"{ablation}, seed {seed}" + ("" if fold is None else f", fold {fold}")
        return f"{method} on {task} ({where})"


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with 0 <= I < N (a job array's index and count); a
    one-line ValueError otherwise.

    Example:
        >>> parse_shard("3/3")
        Traceback (most recent call last):
        ...
        ValueError: --shard I/N needs 0 <= I < N (an array index counted from 0), got '3/3'
    """
    index, sep, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = None
    if not sep or shard is None or not 0 <= shard[0] < shard[1]:
        raise ValueError(
            f"--shard I/N needs 0 <= I < N (an array index counted from 0), got {text!r}"
        )
    return shard


def in_shard(cell: Cell, shard: tuple[int, int] | None) -> bool:
    """Whether ``cell`` is in ``shard`` (every cell is in ``None``, the whole run)."""
    return shard is None or int(cell.name, 16) % shard[1] == shard[0]


def check_changes(
    cells: list[Cell], records: list[dict[str, Any]], what: str, allow: bool
) -> list[Cell]:
    """The cells whose COMPLETE record was made under another definition and that have
    none under theirs; a one-line ValueError naming the first unless ``allow`` (they then
    run again, and their new record replaces the old one in tables).

    Example:
        >>> cell = Cell(("eap", "t", "resample", 0, None), 0, {"params": {"x": 2}})
        >>> old = {"algorithm": "eap", "task": "t", "params": {"ablation": "resample"},
        ...        "seed": 0, "state": "COMPLETE", "config_hash": "0123456789abcdef"}
        >>> check_changes([cell], [old], "comparison 'c'", allow=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: comparison 'c' was run with another config: eap on t (resample, seed 0) ...
        >>> check_changes([cell], [old], "comparison 'c'", allow=True) == [cell]
        True
    """
    by_key = {cell.key: cell for cell in cells}
    complete = [r for r in records if r.get("state") == "COMPLETE" and r.get("config_hash")]
    current = {r["config_hash"] for r in complete}
    changed: dict[tuple[Any, ...], Cell] = {}
    for record in complete:
        cell = by_key.get(cell_key(record))
        if cell is not None and cell.definition not in current:
            changed[cell.key] = cell
    if changed and not allow:
        first = next(iter(changed.values()))
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise ValueError(
            f"{what} was run with another config: {first.describe()}{more} would compute "
            "something else now (parameters, sweep, task options...); resume with "
            "--allow-config-change to run them again, or use a new name"
        )
    return list(changed.values())


def done_definitions(records: list[dict[str, Any]]) -> set[str | tuple[Any, ...]]:
    """What counts as done: the definitions of the COMPLETE records, and the keys of
    COMPLETE records older than definitions (they match any definition of their key).

    Example:
        >>> done_definitions([{"state": "COMPLETE", "config_hash": "ab"},
        ...                   {"state": "FAIL", "config_hash": "cd"}])
        {'ab'}
    """
    done: set[str | tuple[Any, ...]] = set()
    for record in records:
        if record.get("state") != "COMPLETE":
            continue
        recorded = record.get("config_hash")
        done.add(recorded if recorded is not None else cell_key(record))
    return done


def is_done(cell: Cell, done: set[str | tuple[Any, ...]]) -> bool:
    """Whether ``cell`` has a COMPLETE record (see :func:`done_definitions`)."""
    return cell.definition in done or cell.key in done


def current_records(cells: list[Cell], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` less those of a listed cell made under another definition (a config
    change that was allowed), one per cell (see
    :func:`harness.records.selection.one_per_cell`).

    Example:
        >>> cell = Cell(("eap", "t", None, 0, None), 0, {})
        >>> rows = [{"algorithm": "eap", "task": "t", "params": {}, "seed": 0,
        ...          "state": "COMPLETE", "config_hash": h} for h in ("old", cell.definition)]
        >>> [r["config_hash"] == cell.definition for r in current_records([cell], rows)]
        [True]
    """
    definitions = {cell.key: cell.definition for cell in cells}
    kept = [
        r
        for r in records
        if r.get("config_hash") is None
        or definitions.get(cell_key(r), r["config_hash"]) == r["config_hash"]
    ]
    return one_per_cell(kept)


@functools.lru_cache(maxsize=1)
def _loaded(name: str, options: str) -> Any:
    return load_task(name, **json.loads(options))


def loaded_task(name: str, options: dict[str, Any]) -> Any:
    """Task ``name`` with ``options``, loaded once for the cells of it that run in a row
    in this process (the last task only: memory stays that of one task).

    Cells are listed task by task, so a process (``--jobs`` workers included) reloads a
    task only when it moves on to another.
    """
    return _loaded(name, json.dumps(options, sort_keys=True))
