"""Refuse a ``trials.jsonl`` with a corrupt line before anything reads it.

A torn *last* line is what a writer killed mid-append leaves: readers skip it and
resuming repairs it (see :mod:`harness.records.store`). Anything else that is not a trial
record — a line that is not JSON in the middle of the file, or JSON that is not a record
(``[1, 2]``, ``{"foo": 1}``) anywhere — is corruption: every command that reads the
records refuses it in one line naming the file and the line, rather than guessing.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.util.user_files import check_regular_file

REQUIRED = {"study": str, "trial": int, "state": str}
"""Keys every trial record has, with their types."""


def check_records_file(path: Path | str) -> None:
    """A one-line ValueError naming ``path:line`` for the first corrupt line.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> _ = path.write_text('{"study": "s", "trial": 0, "state": "FAIL"}\\n[1, 2]\\n')
        >>> check_records_file(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: .../trials.jsonl:2: not a trial record (...): [1, 2]
    """
    path = Path(path)
    if not path.exists():
        return
    check_regular_file(path, "records file")  # a FIFO would block, /dev/zero never end
    with path.open("rb") as handle:
        lines = handle.read().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, raw in enumerate(lines):
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        where = f"{path}:{i + 1}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            if i == last:
                continue  # a torn last line: a crash artefact, skipped and repaired
            raise ValueError(
                f"{where}: not a JSON line (corrupt in the middle of the file): "
                f"{_excerpt(text)}; move the file aside or delete that line"
            ) from None
        if not _is_record(data):
            raise ValueError(
                f"{where}: not a trial record (a JSON object with study, trial and state): "
                f"{_excerpt(text)}"
            )


def _is_record(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    for key, kind in REQUIRED.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return False
    return True


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
