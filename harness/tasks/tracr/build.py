"""Build and check the tracr weights shipped in the package (``harness tasks build``).

Each file ``harness/tasks/tracr/weights/tracr-<program>.pt.gz`` holds a compiled program's
converted weights (:class:`~harness.tasks.tracr.compiled.CompiledTracr`'s payload) and the
ground truths derived from them (:func:`harness.tasks.tracr.tasks.derive_program_circuits`),
with each circuit's count of individually necessary edges on the derivation data.
Loading a suite task reads the file only: no compiling, no JAX, no derivation.

:func:`build_files` recompiles from RASP (imports tracr and JAX) and writes the files;
:func:`check_files` recompiles and says what differs from the files on disk (weights
compared bitwise, everything else for equality).

Example:
    >>> resolve_programs(["tracr-hist", "reverse"])
    ['hist', 'reverse']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from harness.tasks.tracr.compile import compile_program
from harness.tasks.tracr.programs import SUITE, all_programs
from harness.tasks.tracr.tasks import (
    circuits_payload,
    derive_program_circuits,
    necessary_alone_counts,
)
from harness.tasks.tracr.weight_files import (
    PACKAGED_DIR,
    packaged_path,
    packaged_summary,
    read_payload,
    write_payload,
)
from harness.util.did_you_mean import did_you_mean


def resolve_programs(names: list[str] | None) -> list[str]:
    """Program names from task or program names (``tracr-hist`` or ``hist``); every
    suite program when ``names`` is empty. A ValueError (one line) for an unknown one.

    Example:
        >>> resolve_programs(["tracr-histt"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown tracr program 'tracr-histt' ...; did you mean 'tracr-hist'?
    """
    if not names:
        return list(SUITE)
    programs = all_programs()
    resolved = []
    for name in names:
        program = name.removeprefix("tracr-")
        if program not in programs:
            known = [f"tracr-{p}" for p in programs]
            # compared without the shared prefix, which makes every name look close
            close = did_you_mean(program, programs)
            hint = close.replace("mean '", "mean 'tracr-", 1)
            raise ValueError(f"unknown tracr program {name!r} (known: {', '.join(known)}){hint}")
        resolved.append(program)
    return resolved


def build_payload(program: str) -> dict[str, Any]:
    """Compile ``program``, derive its circuits and count the necessary-alone edges:
    the plain data of its file (imports tracr and JAX)."""
    compiled = compile_program(program)
    derived = circuits_payload(derive_program_circuits(compiled))
    derived["necessary_alone"] = necessary_alone_counts(compiled)
    payload = compiled.payload()
    payload["derived"] = derived
    return payload


def build_files(programs: list[str], directory: str | os.PathLike | None = None) -> list[Path]:
    """Write the files of ``programs`` (atomically) into ``directory`` (default: the
    package's ``weights`` folder); returns their paths."""
    directory = Path(directory or PACKAGED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for program in programs:
        path = packaged_path(program, directory)
        write_payload(build_payload(program), path)
        paths.append(path)
    return paths


def payload_difference(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """The first key where two payloads differ (tensors bitwise, dtype included), or
    ``None`` when they are identical.

    Example:
        >>> a = {"w": {"x": torch.tensor([1.0])}, "n": 1}
        >>> payload_difference(a, {"w": {"x": torch.tensor([1.0 + 1e-7])}, "n": 1})
        'w.x'
        >>> payload_difference(a, a) is None
        True
    """
    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        same = (
            isinstance(expected, torch.Tensor)
            and isinstance(actual, torch.Tensor)
            and expected.dtype == actual.dtype
            and expected.shape == actual.shape
            and torch.equal(expected, actual)
        )
        return None if same else ""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in expected or key not in actual:
                return str(key)
            inner = payload_difference(expected[key], actual[key])
            if inner is not None:
                return f"{key}.{inner}" if inner else str(key)
        return None
    return None if expected == actual else ""


def check_files(programs: list[str], directory: str | os.PathLike | None = None) -> dict[str, str]:
    """Recompile ``programs`` and compare with their files: program -> what differs
    (``"missing"``, or the first differing key, e.g. ``state_dict.blocks.0.attn.W_Q``);
    empty when every file is identical."""
    differences = {}
    for program in programs:
        path = packaged_path(program, directory)
        if not path.exists():
            differences[program] = "missing"
            continue
        difference = payload_difference(build_payload(program), read_payload(path))
        if difference is not None:
            differences[program] = difference or "payload"
    return differences


def suite_table(programs: list[str] | None = None) -> str:
    """A Markdown table of the shipped programs (from their files, no model is built):
    layers, heads per layer, edges, circuit sizes, necessary-alone counts, output kind.

    Example:
        >>> print(suite_table(["reverse"]).splitlines()[2])
        | tracr-reverse | 4 | 1 | 77 | 10 | 2 | 8 | 2 | categorical |
    """
    rows = [
        "| task | layers | heads/layer | edges | zero | resample | necessary alone: zero "
        "| necessary alone: resample | output |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    programs_by_name = all_programs()
    for program in programs or SUITE:
        summary = packaged_summary(program)
        circuits, alone = summary["circuits"], summary["necessary_alone"]
        kind = "numerical" if programs_by_name[program].numerical else "categorical"
        cells = [
            f"tracr-{program}",
            summary["layers"],
            summary["heads"],
            summary["edges"],
            circuits["zero"],
            circuits["resample"],
            alone.get("zero", "-"),
            alone.get("resample", "-"),
            kind,
        ]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)
