"""A sampler seed for each process of a study.

Seeding every process with the study's seed makes a random sampler propose the same
points in each resumed run, each ``--jobs`` process and each ``harness worker``. A run
that starts a study afresh in one process keeps the study's seed (so it reproduces from
it); a resumed run mixes in how many trials the study already has; a process that may
run beside others also mixes in its host and process id.
"""

from __future__ import annotations

import hashlib
import os
import socket


def process_seed(seed: int, started: int, alone: bool) -> int:
    """The sampler seed of one process.

    Args:
        seed: The study's seed.
        started: Trials the study had already started (any state but WAITING).
        alone: Whether this process is the only one running the study now.

    Example:
        >>> process_seed(7, 0, alone=True)
        7
        >>> process_seed(7, 3, alone=True) == process_seed(7, 3, alone=True) != 7
        True
        >>> process_seed(7, 0, alone=False) != 7
        True
    """
    if alone and started == 0:
        return seed
    parts = [str(seed), str(started)]
    if not alone:
        parts += [socket.gethostname(), str(os.getpid())]
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def started_trials(study) -> int:
    """How many of the study's trials ever started (all but WAITING ones)."""
    return sum(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))
