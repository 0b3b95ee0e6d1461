"""A program's RASP graph: built with its labels pinned, hashed, and interpreted.

RASP labels carry a global counter (``aggregate_1``), so a program's residual layout
would depend on what the process built before. :func:`build_program` pins every label
to fixed ids, those of a fresh process that compiles reverse and then proportion; this
reproduces the residual labels of the official circuit files exactly. Building imports
tracr's ``rasp`` module, never JAX.

Example:
    >>> [expr.label for expr in _expressions(build_program("reverse"))][:2]
    ['aggregate_1', 'select_2']
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from harness.tasks.tracr.program import TracrProgram
from harness.tasks.tracr.programs import program_named


def build_program(name: str) -> Any:
    """The RASP output SOp of a program, with labels pinned as in a fresh process.

    Example:
        >>> build_program("reverse").label, build_program("proportion").label
        ('aggregate_1', 'frac_prevs_7')
    """
    program = program_named(name)
    output = program.build()
    _pin_label_ids(output, program.first_label_id)
    return output


def program_digest(name: str) -> str:
    """16 hex digits that change when the program does: its settings and its RASP graph
    (every expression's type, label, encoding and arguments; functions by their code,
    constants and closure values).

    Example:
        >>> program_digest("reverse") == program_digest("reverse") != program_digest("sort")
        True
    """
    program = program_named(name)
    digest = hashlib.sha256(
        repr(
            (program.vocab, program.max_seq_len, program.numerical, program.first_label_id)
        ).encode()
    )
    for expr in _expressions(build_program(name)):
        digest.update(f"{type(expr).__name__}:{expr.label}:{dict(expr.annotations)!r}".encode())
        for key, value in sorted(vars(expr).items()):
            if key.startswith("_") or key in ("unique_id", "name"):
                continue
            digest.update(key.encode() + _value_bytes(value))
    return digest.hexdigest()[:16]


def _value_bytes(value: Any) -> bytes:
    code = getattr(value, "__code__", None)
    if code is not None:  # a function: its code, constants and captured values
        cells = tuple(c.cell_contents for c in (value.__closure__ or ()))
        return code.co_code + repr((code.co_consts, code.co_names, cells)).encode()
    if hasattr(value, "label") and hasattr(value, "children"):  # another RASP expression
        return str(value.label).encode()
    return repr(value).encode()


def reference_of(program: TracrProgram) -> Callable[[tuple[Any, ...]], list[Any]]:
    """What the program computes, input values -> one output per position: its own
    plain-Python ``reference``, else tracr's RASP interpreter (``rasp.evaluate``, which
    imports tracr's ``rasp`` module but not JAX, and never reads the compiled weights).

    Example:
        >>> from harness.tasks.tracr.programs import builtin_programs
        >>> reference_of(builtin_programs()["hist"])(("a", "b", "a"))
        [2, 1, 2]
    """
    if program.reference is not None:
        return program.reference
    from tracr.rasp import rasp

    output = build_program(program.name)

    def evaluate(values: tuple[Any, ...]) -> list[Any]:
        return list(rasp.evaluate(output, list(values)))

    return evaluate


def _pin_label_ids(output: Any, first_id: int) -> None:
    """Give every RASP expression under ``output`` a fixed id, depth first.

    ``unique_id`` is a ``functools.cached_property`` drawn from a global counter; setting
    it in the instance's ``__dict__`` fixes the label (``name_id``) before tracr reads it.
    """
    next_id = first_id
    for expr in _expressions(output):
        if expr.name not in ("tokens", "indices"):
            expr.__dict__["unique_id"] = next_id
            next_id += 1


def _expressions(output: Any) -> Iterator[Any]:
    """Every RASP expression under ``output`` once, depth first, children in order."""
    stack, seen = [output], set()
    while stack:
        expr = stack.pop()
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        yield expr
        stack.extend(reversed(expr.children))
