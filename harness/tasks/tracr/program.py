"""What a tracr program is: a RASP builder and the settings it is compiled with.

The programs themselves are in :mod:`harness.tasks.tracr.programs` (the suite) or a user's
task file (:func:`harness.tasks.register_tracr_program`). ``BOS`` and ``PAD`` are the
compiler's beginning-of-sequence and padding tokens, which no vocabulary may contain.

Example:
    >>> program = TracrProgram("first", ("a", "b"), 3, build=lambda: None)
    >>> program.first_label_id, program.numerical, BOS in program.vocab
    (1, False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BOS = "BOS"
PAD = "compiler_pad"


@dataclass(frozen=True)
class TracrProgram:
    """A RASP program and the settings it is compiled with.

    Attributes:
        name: The program's name (``"reverse"``, ``"proportion"``); the task is
            ``tracr-<name>``.
        vocab: The input vocabulary (without BOS and pad).
        max_seq_len: The input length, BOS not counted (every prompt has this length).
        build: Returns the RASP output SOp (imports tracr's ``rasp``, never JAX).
        numerical: Whether the output is one number (else a categorical value).
        first_label_id: The RASP id given to the output; the rest follow depth first.
        source: The program, as text, for records.
        reference: What the program computes, in plain Python: input values -> one
            output per input position (``None`` where the program defines none). The
            suite's are written independently of RASP and the tests check the compiled
            model against them; where it is ``None`` the answers are tracr's RASP
            interpreter's (``rasp.evaluate``), which is independent of the compiled weights.
        inputs: Every valid input, for programs that need constrained inputs (default:
            every sequence of ``max_seq_len`` values from ``vocab``).
        output_positions: The input positions (1-based, after BOS) the task reads
            (default: every one).
        corrupt: How a corrupt prompt is made from a clean one (documentation).
        description: One line for ``harness ls tasks``.
    """

    name: str
    vocab: tuple[Any, ...]
    max_seq_len: int
    build: Callable[[], Any]
    numerical: bool = False
    first_label_id: int = 1
    source: tuple[str, ...] = ()
    reference: Callable[[tuple[Any, ...]], list[Any]] | None = None
    inputs: Callable[[], list[tuple[Any, ...]]] | None = None
    output_positions: tuple[int, ...] | None = None
    corrupt: str = "another valid input of the same length, drawn uniformly"
    description: str = ""
