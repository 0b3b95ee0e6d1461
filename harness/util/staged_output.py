"""Outputs that appear whole or not at all: built aside, then swapped in by renames.

A report rebuilt over an old one writes many files; killed half-way, it used to leave the
old ``report.md`` beside some new tables, looking complete. Here the new entries are
built in a hidden folder inside the output folder (same filesystem, so every move is a
``rename``), then swapped in, pages last:

1. the old pages (e.g. ``index.html``, ``report.md``) are moved aside first,
2. each folder (``tables/``, ``figures/``) is replaced: the old one moved aside, the new
   one moved in,
3. the new pages are moved in, and the aside folder removed.

Whatever instant a kill lands, a page in the output folder sits beside the folders it was
built with: before step 1 the old report is intact, after step 3 the new one is complete,
and in between (a few renames) there is no page at all. The entries named are the
output's own (a folder is replaced whole, stale files included); any other entry of the
output folder is left alone. A building folder a killed run left behind is removed by the
next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

PREFIX = ".building-"  # the hidden folder inside the output: .building-<pid>


@contextlib.contextmanager
def staged_output(out: Path, pages: tuple[str, ...], folders: tuple[str, ...]) -> Iterator[Path]:
    """A fresh folder to build the output in; on a clean exit its ``pages`` and ``folders``
    replace those of ``out`` (see the module docstring); on an exception it is removed and
    ``out`` keeps what it had.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> _ = (out / "page.md").write_text("old")
        >>> with staged_output(out, ("page.md",), ("tables",)) as stage:
        ...     _ = (stage / "page.md").write_text("new")
        ...     (out / "page.md").read_text()  # the old page until the swap
        'old'
        >>> (out / "page.md").read_text(), sorted(p.name for p in out.iterdir())
        ('new', ['page.md'])
    """
    out.mkdir(parents=True, exist_ok=True)
    remove_abandoned(out)
    stage = out / f"{PREFIX}{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)  # a reused pid's leftover
    (stage / "new").mkdir(parents=True)
    try:
        yield stage / "new"
        _swap(out, stage, pages, folders)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap(out: Path, stage: Path, pages: tuple[str, ...], folders: tuple[str, ...]) -> None:
    new, old = stage / "new", stage / "old"
    old.mkdir()
    for name in (*pages, *folders):  # pages first: no old page outlives its folders
        with contextlib.suppress(FileNotFoundError):
            os.rename(out / name, old / name)
    for name in (*folders, *pages):  # pages last: no new page before its folders
        with contextlib.suppress(FileNotFoundError):
            os.rename(new / name, out / name)


def remove_abandoned(out: Path) -> list[str]:
    """Remove the building folders of runs that died (their pid is gone); return their
    names.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> (out / f"{PREFIX}999999999").mkdir()
        >>> remove_abandoned(out)
        ['.building-999999999']
    """
    removed = []
    for path in sorted(out.glob(f"{PREFIX}*")):
        pid = path.name.removeprefix(PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
