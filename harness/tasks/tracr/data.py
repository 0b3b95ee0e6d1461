"""The data of tracr tasks: every valid input, seeded train/validation/test splits of
clean and corrupt prompts, and the answers, from a program's plain-Python reference or
tracr's RASP interpreter (never from the compiled model).

Example:
    >>> from harness.tasks.tracr.compile import load_compiled
    >>> splits = make_splits(load_compiled("hist"), seed=1)
    >>> [b.size for b in splits.train + splits.validation + splits.test]
    [64, 64, 64]
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any, NamedTuple

import torch
from torch import Tensor

from harness.engine.batches import PromptBatch
from harness.tasks.tracr.compiled import CompiledTracr
from harness.tasks.tracr.program import TracrProgram
from harness.tasks.tracr.programs import all_programs
from harness.tasks.tracr.rasp_graph import reference_of

DEFAULT_EXAMPLES = {"reverse": 121, "proportion": 512}  # per split, as auto-circuit
SUITE_DEFAULT_EXAMPLES = 64  # train and test prompts of the other suite programs
SUITE_DEFAULT_VALIDATION = 64  # their validation prompts (reverse, proportion: n_examples)


class Splits(NamedTuple):
    """A task's batches: ``train`` to learn from, ``validation`` to tune on, ``test`` to
    report (``validation`` never shares a clean prompt with ``test``)."""

    train: tuple[PromptBatch, ...]
    validation: tuple[PromptBatch, ...]
    test: tuple[PromptBatch, ...]


def _program_of(compiled: CompiledTracr) -> TracrProgram:
    return all_programs()[compiled.program]


def all_inputs(compiled: CompiledTracr) -> Tensor:
    """Every valid full-length prompt, ``[n_inputs, 1 + max_seq_len]`` token ids (every
    sequence over the vocabulary, or the program's own ``inputs``), in a fixed order.

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> tuple(all_inputs(load_compiled("reverse")).shape)
        (243, 6)
    """
    program = _program_of(compiled)
    if program.inputs is not None:
        rows = program.inputs()
    else:
        rows = itertools.product(program.vocab, repeat=program.max_seq_len)
    return torch.tensor([compiled.encode(list(row)) for row in rows])  # [n_inputs, pos]


def output_positions(compiled: CompiledTracr) -> tuple[int, ...]:
    """The positions a task reads (every position after BOS unless the program says).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> output_positions(load_compiled("shift-2"))
        (3, 4, 5)
    """
    program = _program_of(compiled)
    return program.output_positions or tuple(range(1, program.max_seq_len + 1))


def expected_outputs(compiled: CompiledTracr, tokens: Tensor) -> Tensor:
    """What the program computes at the task's output positions, from its plain-Python
    reference: class ids ``[batch, n_out]`` long (categorical) or values ``[batch, n_out]``
    float (numerical).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> compiled = load_compiled("proportion")
        >>> tokens = torch.tensor([compiled.encode(["x", "w", "w", "x"])])
        >>> expected_outputs(compiled, tokens)
        tensor([[1.0000, 0.5000, 0.3333, 0.5000]])
    """
    body = tokens[:, 1:]  # [batch, n_in]
    if compiled.program == "proportion":  # as before the suite (bit-identical answers)
        is_x = (body == compiled.input_encoding["x"]).float()
        steps = torch.arange(1, body.shape[1] + 1, dtype=torch.float32)
        return is_x.cumsum(1) / steps
    program = _program_of(compiled)
    reference = reference_of(program)
    decode = {token: value for value, token in compiled.input_encoding.items()}
    positions = output_positions(compiled)
    rows = []
    for row in body.tolist():
        values = tuple(decode[t] for t in row)
        out = reference(values)
        row_out = [out[p - 1] for p in positions]
        if any(value is None for value in row_out):
            undefined = [p for p, value in zip(positions, row_out, strict=True) if value is None]
            raise ValueError(
                f"tracr-{compiled.program} defines no output at position(s) {undefined} of "
                f"input {list(values)}: give the program output_positions it always defines"
            )
        rows.append(row_out)
    if program.numerical:
        return torch.tensor(rows, dtype=torch.float32)  # [batch, n_out]
    encoding = compiled.output_encoding
    assert encoding is not None
    for row, row_out in zip(body.tolist(), rows, strict=True):
        for position, value in zip(positions, row_out, strict=True):
            if value not in encoding:
                raise ValueError(
                    f"tracr-{compiled.program}: the program outputs {value!r} at position "
                    f"{position} of input {[decode[t] for t in row]}, a value the compiled "
                    f"model cannot output (its output values: {sorted(encoding, key=str)})"
                )
    classes = [[encoding[value] for value in row] for row in rows]
    return torch.tensor(classes, dtype=torch.long)  # [batch, n_out]


def make_splits(
    compiled: CompiledTracr,
    seed: int = 0,
    n_examples: int | None = None,
    n_validation: int | None = None,
    batch_size: int | None = None,
) -> Splits:
    """Seeded train, validation and test batches of clean/corrupt pairs.

    Clean prompts: a seeded permutation of :func:`all_inputs`; train takes the first
    ``n_examples``, test the next ``n_examples``, validation the next ``n_validation``
    (so train and test do not depend on ``n_validation``). Where the inputs run out
    (tracr-reverse and tracr-proportion at their default sizes: 243 and 1024 inputs,
    121 and 512 per split), validation continues with the train inputs: it never shares
    a clean prompt with test. Corrupt prompt (every split): another valid input of the
    same length, drawn uniformly (never the clean input itself).

    Categorical tasks get ``answers`` ``[batch, n_out, 1]`` (the class the program
    outputs) and ``wrong_answers`` ``[batch, n_out, n_classes - 1]`` (every other class);
    numerical ones float ``answers`` ``[batch, n_out]``.

    Args:
        compiled: The program's converted model.
        seed: Seeds the split and the corrupt draws.
        n_examples: Train and test prompts each (default 121 for reverse, 512 for
            proportion, 64 for the other programs).
        n_validation: Validation prompts (default ``n_examples`` for reverse and
            proportion, 64 for the others; 0 for none).
        batch_size: Prompts per batch (default: one batch per split).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> splits = make_splits(load_compiled("reverse"), n_examples=10, n_validation=3)
        >>> [b.size for b in splits.train], splits.validation[0].size
        ([10], 3)
    """
    inputs = all_inputs(compiled)  # [n_inputs, pos]
    n_inputs = inputs.shape[0]
    n, n_val = split_sizes(compiled.program, n_inputs, n_examples, n_validation, batch_size)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n_inputs, generator=generator)
    offsets = torch.randint(1, n_inputs, (2 * n,), generator=generator)
    pool = torch.cat([order[2 * n :], order[:n]])  # validation: unused inputs, then train
    validation_offsets = torch.randint(1, n_inputs, (n_val,), generator=generator)
    clean_index = torch.cat([order[: 2 * n], pool[:n_val]])
    corrupt_index = (clean_index + torch.cat([offsets, validation_offsets])) % n_inputs
    positions = output_positions(compiled)
    parts = {"train": (0, n), "test": (n, 2 * n), "validation": (2 * n, 2 * n + n_val)}
    splits = {}
    for split, (first, stop) in parts.items():
        size = int(batch_size) if batch_size is not None else max(stop - first, 1)
        batches = []
        for i, start in enumerate(range(first, stop, size)):
            index = slice(start, min(start + size, stop))
            clean = inputs[clean_index[index]]  # [batch, pos]
            corrupt = inputs[corrupt_index[index]]  # [batch, pos]
            answers = expected_outputs(compiled, clean)  # [batch, n_out]
            wrong = None if answers.is_floating_point() else _other_classes(answers, compiled)
            key = f"tracr-{compiled.program}/seed{seed}/{split}/{i}"
            batches.append(PromptBatch.create(key, clean, corrupt, answers, wrong, positions))
        splits[split] = tuple(batches)
    return Splits(splits["train"], splits["validation"], splits["test"])


def split_sizes(
    program: str,
    n_inputs: int,
    n_examples: Any = None,
    n_validation: Any = None,
    batch_size: Any = None,
) -> tuple[int, int]:
    """``(n_examples, n_validation)`` with defaults filled in, or a one-line ValueError
    for sizes the program's ``n_inputs`` valid inputs cannot give. Default ``n_examples``:
    121 (reverse), 512 (proportion), else 64 or a third of the inputs where they are
    fewer than 192; default ``n_validation``: what is left, at most 64.

    Example:
        >>> split_sizes("hist", 243), split_sizes("reverse", 243), split_sizes("mine", 27)
        ((64, 64), (121, 121), (9, 9))
        >>> split_sizes("hist", 243, n_validation=200)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: n_validation must be in 0..179 for tracr-hist with n_examples 64 ..., got 200
    """
    if n_inputs < 2:
        raise ValueError(
            f"tracr-{program} has {n_inputs} valid input(s): a task needs 2 or more (a train "
            "and a test prompt); give it a larger vocab or max_seq_len"
        )
    legacy = program in DEFAULT_EXAMPLES
    default = DEFAULT_EXAMPLES.get(program, min(SUITE_DEFAULT_EXAMPLES, max(1, n_inputs // 3)))
    n = default if n_examples is None else n_examples
    if not _is_int(n) or not 0 < 2 * n <= n_inputs:
        raise ValueError(
            f"n_examples must be in 1..{n_inputs // 2} for tracr-{program} "
            f"(train and test split {n_inputs} distinct inputs), got {n!r}"
        )
    if n_validation is None:
        n_validation = n if legacy else min(SUITE_DEFAULT_VALIDATION, n_inputs - 2 * n)
    if not _is_int(n_validation) or not 0 <= n_validation <= n_inputs - n:
        raise ValueError(
            f"n_validation must be in 0..{n_inputs - n} for tracr-{program} with "
            f"n_examples {n} (it never overlaps the test prompts), got {n_validation!r}"
        )
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(n), int(n_validation)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def count_inputs(program: str) -> int:
    """How many valid inputs a program has (without building them where it can).

    Example:
        >>> count_inputs("reverse"), count_inputs("sort-unique")
        (243, 360)
    """
    spec = all_programs()[program]
    if spec.inputs is not None:
        return len(spec.inputs())
    return len(spec.vocab) ** spec.max_seq_len


def check_options(program: str, options: dict[str, Any]) -> None:
    """A one-line ValueError for split sizes the program cannot give, before loading
    (``harness.tasks.base.check_task_options`` calls it for every tracr task)."""
    split_sizes(
        program,
        count_inputs(program),
        options.get("n_examples"),
        options.get("n_validation"),
        options.get("batch_size"),
    )


def make_batches(
    compiled: CompiledTracr,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
) -> tuple[tuple[PromptBatch, ...], tuple[PromptBatch, ...]]:
    """The train and test batches of :func:`make_splits` (the same prompts).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> train, test = make_batches(load_compiled("reverse"), n_examples=10, batch_size=4)
        >>> [b.size for b in train], tuple(train[0].wrong_answers.shape)
        ([4, 4, 2], (4, 5, 2))
    """
    splits = make_splits(compiled, seed, n_examples, 0, batch_size)
    return splits.train, splits.test


def _other_classes(answers: Tensor, compiled: CompiledTracr) -> Tensor:
    """``[batch, n_out] -> [batch, n_out, n_classes - 1]``: every class but the answer."""
    n_classes = len(compiled.output_labels)
    classes = torch.arange(n_classes).expand(*answers.shape, n_classes)  # [batch, n_out, cls]
    keep = classes != answers[..., None]
    return classes[keep].reshape(*answers.shape, n_classes - 1)
