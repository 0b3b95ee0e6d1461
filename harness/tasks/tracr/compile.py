"""Compile RASP programs with tracr, and get a program's converted weights.

tracr (``tracr-pypi``, with JAX) is imported only to compile. The converted weights are
stored as plain tensors, so a load needs neither tracr nor JAX: by default
:func:`load_compiled` reads the file shipped in the package
(``harness/tasks/tracr/weights/tracr-<program>.pt.gz``, written by ``harness tasks
build``, with the derived circuits); given a ``cache_dir`` it reads
``<cache_dir>/tracr-<program>-tracr-pypi-<version>.pt``, and compiles and writes it only
when it is missing. Where tracr-pypi is not installed
(a GPU machine given only the cache), the cache of the pinned version is read.

The pieces: a program's RASP graph with pinned labels
(:mod:`harness.tasks.tracr.rasp_graph`), the conversion to transformer_lens weights
(:mod:`harness.tasks.tracr.convert`, giving a
:class:`~harness.tasks.tracr.compiled.CompiledTracr`) and the weights files
(:mod:`harness.tasks.tracr.weight_files`).
"""

from __future__ import annotations

import os
from typing import Any

from harness.tasks.tracr.compiled import CACHE_FORMAT, CompiledTracr
from harness.tasks.tracr.convert import convert
from harness.tasks.tracr.program import BOS, PAD
from harness.tasks.tracr.programs import is_added, program_named
from harness.tasks.tracr.rasp_graph import build_program, program_digest
from harness.tasks.tracr.tracr_pypi import tracr_version
from harness.tasks.tracr.weight_files import cache_path, packaged_path, read_payload, write_payload

_COMPILED: dict[tuple[str, str], CompiledTracr] = {}  # users' programs, compiled this process


def compile_rasp(name: str) -> Any:
    """Compile a program with tracr: its ``AssembledTransformerModel`` (imports JAX).

    Example:
        >>> assembled = compile_rasp("reverse")
        >>> assembled.apply(["BOS", 1, 2, 3]).decoded
        ['BOS', 3, 2, 1]
    """
    from tracr.compiler import compiling

    program = program_named(name)
    return compiling.compile_rasp_to_model(
        build_program(name),
        vocab=set(program.vocab),
        max_seq_len=program.max_seq_len,
        compiler_bos=BOS,
        compiler_pad=PAD,
    )


def compile_program(name: str) -> CompiledTracr:
    """Compile ``name`` with tracr and convert it (a few seconds, mostly JAX start-up);
    what tracr cannot compile (it averages only binary values in attention, needs the
    tokens in the program...) is a one-line ValueError naming the task.

    Example:
        >>> compile_program("reverse").encode([1, 2, 3])
        [3, 0, 1, 2]
    """
    try:
        assembled = compile_rasp(name)
    except Exception as error:
        reason = one_line_error(error)
        raise ValueError(f"tracr-{name}: tracr cannot compile it: {reason}") from error
    return convert(name, assembled)


def one_line_error(error: BaseException) -> str:
    """``"Type: message"`` on one line (tracr raises some errors with a tuple of args).

    Example:
        >>> one_line_error(NotImplementedError("only binary values:", {0, 1, 2}))
        'NotImplementedError: only binary values: {0, 1, 2}'
    """
    text = " ".join(str(arg) for arg in error.args) if error.args else ""
    return f"{type(error).__name__}: {' '.join(text.split())}".rstrip(": ")


def load_compiled(name: str, cache_dir: str | os.PathLike | None = None) -> CompiledTracr:
    """The converted weights of a program: with ``cache_dir`` ``None``, those shipped in
    the package (with their derived circuits: nothing compiles, JAX is never imported);
    otherwise (or for a program the package lacks) from the cache, or compiled and cached.
    A program added with :func:`harness.tasks.register_tracr_program` compiles once per
    process without ``cache_dir``, and is cached under a name with its
    :func:`program_digest` with one.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     first = load_compiled("reverse", tmp)   # compiles and writes the cache
        ...     again = load_compiled("reverse", tmp)   # reads it, no JAX
        >>> again.config["d_model"], again.residual_labels == first.residual_labels
        (41, True)
    """
    program_named(name)  # unknown names: one line, with a did-you-mean
    if is_added(name) and cache_dir is None:  # a user's program: compiled once per process
        key = (name, program_digest(name))
        if key not in _COMPILED:
            tracr_version()
            _COMPILED[key] = compile_program(name)
        return _COMPILED[key]
    if cache_dir is None and packaged_path(name).exists():
        return CompiledTracr.from_payload(read_payload(packaged_path(name)))
    path = cache_path(name, cache_dir)
    if path.exists():
        payload = read_payload(path)
        if payload.get("format") == CACHE_FORMAT:
            return CompiledTracr.from_payload(payload)
    tracr_version()  # where tracr-pypi is missing: one line saying what to install
    compiled = compile_program(name)
    write_payload(compiled.payload(), path)
    return compiled
