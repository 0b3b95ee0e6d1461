"""One-line notices on stderr, for things a run repaired or worked around itself."""

from __future__ import annotations

import sys


def notice(message: str) -> None:
    """Print ``harness: warning: <message>`` as one line on stderr.

    Example:
        >>> import contextlib, io
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     notice("two\\nlines")
        >>> err.getvalue()
        'harness: warning: two lines\\n'
    """
    flat = " ".join(message.split())
    print(f"harness: warning: {flat}", file=sys.stderr, flush=True)
