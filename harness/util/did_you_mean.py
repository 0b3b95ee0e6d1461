"""Did-you-mean hints for names a user mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""`` when none is close.

    Example:
        >>> did_you_mean("tracr-revers", ["tracr-reverse", "ioi"])
        "; did you mean 'tracr-reverse'?"
        >>> did_you_mean("zzz", ["ioi"])
        ''
    """
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
