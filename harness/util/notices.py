"""One-line notices on stderr, for things a run repaired or worked around itself."""

from __future__ import annotations

import os
import sys
import warnings


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


def one_line_warnings() -> None:
    """Show every Python warning of this process as one ``harness: warning:`` line
    (instead of two: the message, then the source line that warned).

    Example:
        >>> _format("out of\\nrange", UserWarning, "trial.py", 642)
        'harness: warning: out of range (UserWarning, trial.py:642)\\n'
    """
    warnings.formatwarning = _format


def _format(message, category, filename, lineno, line=None) -> str:
    flat = " ".join(str(message).split())
    where = f"{category.__name__}, {os.path.basename(filename)}:{lineno}"
    return f"harness: warning: {flat} ({where})\n"
