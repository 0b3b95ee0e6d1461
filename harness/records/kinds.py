"""Which kind of run owns a name's place under the runs directory.

Studies, comparisons and transfers all keep their records in ``<runs>/<name>/``. Without
a check, a comparison named like an existing study appended its runs to the study's
``trials.jsonl``, took the study's trials as its own finished runs, and the study's
summary then named a comparison run as its best. So a place belongs to one kind: the
first comparison or transfer to use it writes ``<runs>/<name>/kind`` (one word), and
every command that writes or reads a place checks it first, refusing another kind's
place in one line (a ``ValueError``: exit code 2 at the command line).

Places made before the ``kind`` file existed are recognised by what they hold: a study
has ``records.id`` (written before its first trial) or ``study.db``; a transfer has
``transfer.jsonl``. A ``trials.jsonl`` alone (an old comparison's, or records written by
hand) names no kind.

Example:
    >>> import tempfile
    >>> place = Path(tempfile.mkdtemp()) / "x"
    >>> claim_kind(place, COMPARE)
    >>> claim_kind(place, STUDY)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the name 'x' is taken by a comparison (.../x): give the study another ...
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from harness.records.store import RecordWriteError

STUDY, COMPARE, TRANSFER = "study", "compare", "transfer"
KIND_FILE = "kind"
_NAMES = {STUDY: "a study", COMPARE: "a comparison", TRANSFER: "a transfer"}


def kind_of(place: Path) -> str | None:
    """The kind that owns ``place`` (a ``<runs>/<name>`` directory), or ``None`` if none
    says so (see the module docstring).

    Example:
        >>> import tempfile
        >>> place = Path(tempfile.mkdtemp())
        >>> kind_of(place / "nothing"), (place / "records.id").touch(), kind_of(place)
        (None, None, 'study')
    """
    try:
        written = (place / KIND_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        written = ""
    if written:
        return written
    if (place / "records.id").exists() or (place / "study.db").exists():
        return STUDY
    if (place / "transfer.jsonl").exists():
        return TRANSFER
    return None  # free, or records alone: a comparison's or a hand-made study's


def check_kind(place: Path, kind: str) -> None:
    """A one-line ValueError if another kind owns ``place``; writes nothing."""
    found = kind_of(place)
    if found is not None and found != kind:
        raise ValueError(
            f"the name {place.name!r} is taken by {_NAMES.get(found, found)} ({place}): "
            f"give the {kind if kind != COMPARE else 'comparison'} another name, or use "
            "another --runs-dir"
        )


def claim_kind(place: Path, kind: str) -> None:
    """:func:`check_kind`, then mark ``place`` as ``kind``'s (once; racers agree or one
    of them is refused).

    Raises:
        ValueError: Another kind owns ``place`` (one line).
        RecordWriteError: The mark could not be written.
    """
    check_kind(place, kind)
    path = place / KIND_FILE
    draft = place / f".{KIND_FILE}.{socket.gethostname()}.{os.getpid()}"
    try:
        place.mkdir(parents=True, exist_ok=True)
        draft.write_text(f"{kind}\n")
        os.link(draft, path)  # atomic, complete, and refused if a racer's is there
    except FileExistsError:
        check_kind(place, kind)  # a racer marked it first
    except OSError as error:
        raise RecordWriteError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            draft.unlink()
