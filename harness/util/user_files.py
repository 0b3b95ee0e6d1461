"""Files a user names (configs, MIB circuit files, records, task files): read only when
they are regular files, and only up to a bound.

A FIFO blocks its reader until someone writes to it, and ``/dev/zero`` never ends: either
would hang the harness or fill its memory. Both are refused in one line before a byte is
read; so is a file larger than its kind can sensibly be.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MiB = 1024 * 1024

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _not_regular(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular file, else None."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def check_regular_file(path: Path | str, what: str) -> None:
    """A one-line ValueError if ``path`` exists and is not a regular file (after symlinks);
    a missing path is left to the caller. Never blocks (``stat`` opens nothing).

    Example:
        >>> check_regular_file("/dev/zero", "study config")
        Traceback (most recent call last):
        ...
        ValueError: study config '/dev/zero' is a character device, not a regular file
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    kind = _not_regular(mode)
    if kind is not None:
        raise ValueError(f"{what} {str(path)!r} is {kind}, not a regular file")


def read_user_file(path: Path | str, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; else a one-line ValueError.
    OSErrors of opening (a missing file, no permission) pass through as they are.

    Example:
        >>> read_user_file("/dev/zero", "MIB circuit file", MiB)
        Traceback (most recent call last):
        ...
        ValueError: MIB circuit file '/dev/zero' is a character device, not a regular file
    """
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)
        if kind is not None:
            raise ValueError(f"{what} {str(path)!r} is {kind}, not a regular file")
        too_big = ValueError(
            f"{what} {str(path)!r} is larger than {_size(limit)} ({_size(info.st_size)}); "
            "is it the right file?"
        )
        if info.st_size > limit:
            raise too_big
        chunks, total = [], 0
        while chunk := os.read(fd, min(MiB, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while we read
                raise too_big
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size(n: int) -> str:
    """A byte count for people.

    Example:
        >>> _size(1024 * 1024), _size(300)
        ('1 MiB', '300 bytes')
    """
    return f"{n / MiB:.3g} MiB" if n >= MiB else f"{n} bytes"


def refuse_symlinked_outputs(out: Path, names: tuple[str, ...]) -> None:
    """A one-line ValueError if ``out``'s entry of any of ``names``, or anything under one
    that is a folder, is a symbolic link: writing through it would change a file elsewhere
    (a link planted in a shared folder). ``out`` itself may be a link: the user named it.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> (out / "report.md").symlink_to("/etc/passwd")
        >>> refuse_symlinked_outputs(out, ("report.md",))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: .../report.md is a symbolic link (to /etc/passwd): ...
    """
    for name in names:
        top = out / name
        found = [top] if top.is_symlink() else []
        if not found and top.is_dir():
            found = [p for p in sorted(top.rglob("*")) if p.is_symlink()][:1]
        if found:
            raise ValueError(
                f"{found[0]} is a symbolic link (to {os.readlink(found[0])}): the report "
                "will not write through it; remove it or choose another --out"
            )


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then a rename, so
    that processes writing it at once (``--shard`` runs) and its readers never see a mix.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "table.md"
        >>> write_text_atomically(path, "| a |\\n")
        >>> path.read_text(), [p.name for p in path.parent.iterdir()]
        ('| a |\\n', ['table.md'])
    """
    import tempfile

    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(text)
    try:
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except OSError:
        os.unlink(handle.name)
        raise
