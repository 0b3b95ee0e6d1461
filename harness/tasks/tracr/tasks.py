"""The tracr tasks: compiled RASP programs with exact, derived ground truth.

The suite (``harness.tasks.suite_tasks("tracr-suite")``, programs in
:mod:`harness.tasks.tracr.programs`) holds ``tracr-reverse`` (reverse a sequence over
``{1, 2, 3}``; 4 layers x 1 head, 77 edges), ``tracr-proportion`` (the fraction of
``"x"`` so far; one numerical output, 2 layers x 1 head, 23 edges) and 23 more programs:
tracr's library with chosen arguments and programs written from published task
descriptions, 1 to 8 layers, up to 4 heads per layer, categorical and numerical outputs.

Models are loaded from the files shipped in the package (``harness/tasks/tracr/weights``,
written by ``harness tasks build``, which recompiles from RASP): loading compiles nothing
and never imports JAX. With ``cache_dir`` a task is compiled into and read from that cache
instead (see :mod:`harness.tasks.tracr.compile`). Every prompt is ``BOS`` plus the
program's full length (clean and corrupt always have the same length); the task reads
every position after ``BOS`` unless the program says otherwise. Splits: train, validation
and test (:mod:`harness.tasks.tracr.data`). Each task has two ground truths, derived from
the compiled model and the task's data by :mod:`harness.tasks.tracr.derive` (nothing typed in;
the package's files carry them, and the tests re-derive them):

- ``resample`` (default): for resample ablation with same-length pairs (reverse 2 edges,
  proportion 3: auto-circuit's official sets). Length and positions are the same in both
  prompts of a pair, so only the token-carrying path is needed.
- ``zero``: for zero ablation, the program's information flow. On reverse and proportion
  it is named ``acdc-zero`` (10 and 5 edges: the ACDC paper's official sets), with
  ``zero`` as an alias; records and reports keep ``acdc-zero`` there.

Example:
    >>> from harness.tasks import load
    >>> task = load("tracr-reverse", device="cpu")
    >>> task.patchable.n_edges, sorted(task.official_edges())
    (77, ['A3.0->Resid End', 'Resid Start->A3.0.V'])
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from harness.engine.batches import PromptBatch
from harness.engine.device import resolve_device
from harness.engine.patching import PatchableModel
from harness.tasks.base import Task, TaskSpec
from harness.tasks.registry import register, unregister
from harness.tasks.tracr.compile import load_compiled, one_line_error
from harness.tasks.tracr.compiled import CompiledTracr
from harness.tasks.tracr.data import (
    DEFAULT_EXAMPLES,
    check_options,
    count_inputs,
    make_splits,
    output_positions,
    split_sizes,
)
from harness.tasks.tracr.derive import (
    DerivationData,
    DerivedCircuits,
    derive_circuits,
    float64_model,
    necessary_alone,
    one_thread,
)
from harness.tasks.tracr.program import BOS, PAD, TracrProgram
from harness.tasks.tracr.programs import (
    SUITE_NAME,
    add_program,
    all_programs,
    builtin_programs,
    forget_program,
)
from harness.tasks.tracr.sizes import check_program_size
from harness.tasks.tracr.weight_files import cache_path, packaged_path, packaged_summary

_AUTO_CIRCUIT = "UFO-101/auto-circuit@98db58c auto_circuit/metrics/official_circuits/circuits/tracr"
_ACDC = "ArthurConmy/Automatic-Circuit-Discovery@a9a7857 (big-rerun) acdc/tracr_task/utils.py"

# ground truth -> the ablation it is for; every one is derived (harness.tasks.tracr.derive)
GROUND_TRUTH_ABLATIONS = {"resample": "resample", "acdc-zero": "zero"}
ALIASES = {"zero": "acdc-zero"}  # the derivation's name; records keep the official one
# The official circuits the derivation reproduces (tests check the sets are equal).
OFFICIAL_SOURCES: dict[str, dict[str, str]] = {
    "reverse": {
        "resample": f"{_AUTO_CIRCUIT}/reverse_official.py::tracr_reverse_true_edges",
        "acdc-zero": f"{_ACDC}::get_tracr_reverse_edges (ACDC run, zero ablation, commit e612e50)",
    },
    "proportion": {
        "resample": f"{_AUTO_CIRCUIT}/xproportion_official.py::tracr_xproportion_official_edges",
        "acdc-zero": (
            f"{_ACDC}::get_tracr_proportion_edges (ACDC run, zero ablation, commit e612e50)"
        ),
    },
}
DERIVATION_SEED = 0  # the derivation runs on the default splits of this seed

_DERIVED: dict[tuple[str, str, str], DerivedCircuits] = {}


def _fingerprint(compiled: CompiledTracr) -> str:
    """A hash of the weights (a few KB): the memo never serves other weights' circuits."""
    digest = hashlib.sha256()
    for name in sorted(compiled.state_dict):
        digest.update(name.encode())
        digest.update(compiled.state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def derivation_batches(compiled: CompiledTracr) -> tuple[PromptBatch, ...]:
    """The prompts the ground truths are derived on: every split's default prompts of
    seed :data:`DERIVATION_SEED` (reverse and proportion: train and test, as before the
    suite), whatever seed or sizes a user loads the task with.

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> sum(b.size for b in derivation_batches(load_compiled("hist")))
        192
    """
    splits = make_splits(compiled, DERIVATION_SEED)
    if compiled.program in DEFAULT_EXAMPLES:
        return splits.train + splits.test
    return splits.train + splits.validation + splits.test


def derive_program_circuits(compiled: CompiledTracr) -> DerivedCircuits:
    """Run :func:`harness.tasks.tracr.derive.derive_circuits` on :func:`derivation_batches`
    (never reads the circuits shipped with the weights; ``harness tasks build`` does)."""
    return derive_circuits(
        compiled.to_model("cpu"),
        DerivationData.from_batches(derivation_batches(compiled)),
        compiled.residual_labels,
    )


def derived_circuits(compiled: CompiledTracr) -> DerivedCircuits:
    """The ground truths of a compiled program: those shipped with its weights
    (``compiled.derived``, written by ``harness tasks build``), else derived from its
    weights and data by :func:`derive_program_circuits`. Memoised per process.

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> derived = derived_circuits(load_compiled("proportion"))
        >>> len(derived.structural), len(derived.zero), len(derived.resample)
        (5, 5, 3)
    """
    if compiled.derived is not None:
        return circuits_from_payload(compiled.derived)
    key = (compiled.program, compiled.tracr_version, _fingerprint(compiled))
    if key not in _DERIVED:
        _DERIVED[key] = derive_program_circuits(compiled)
    return _DERIVED[key]


def circuits_payload(derived: DerivedCircuits) -> dict[str, Any]:
    """Plain data of derived circuits, for the weights file (sorted: byte-stable).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> payload = circuits_payload(derived_circuits(load_compiled("proportion")))
        >>> circuits_from_payload(payload) == derived_circuits(load_compiled("proportion"))
        True
    """
    return {
        "structural": {edge: list(labels) for edge, labels in derived.structural.items()},
        "zero": sorted(derived.zero),
        "resample": sorted(derived.resample),
        "tol": derived.tol,
        "resample_start": derived.resample_start,
    }


def circuits_from_payload(payload: dict[str, Any]) -> DerivedCircuits:
    return DerivedCircuits(
        structural={edge: tuple(labels) for edge, labels in payload["structural"].items()},
        zero=frozenset(payload["zero"]),
        resample=frozenset(payload["resample"]),
        tol=float(payload["tol"]),
        resample_start=payload["resample_start"],
    )


def ground_truth_names(program: str) -> dict[str, str]:
    """Ground-truth name -> its ablation, default first: ``acdc-zero`` on reverse and
    proportion (the ACDC paper's name, ``zero`` an alias), ``zero`` elsewhere.

    Example:
        >>> ground_truth_names("hist")
        {'resample': 'resample', 'zero': 'zero'}
    """
    if program in OFFICIAL_SOURCES:
        return dict(GROUND_TRUTH_ABLATIONS)
    return {"resample": "resample", "zero": "zero"}


def ground_truth_circuits(
    derived: DerivedCircuits, program: str = "reverse"
) -> dict[str, frozenset[str]]:
    """Ground-truth name -> edges (default first).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> truths = ground_truth_circuits(derived_circuits(load_compiled("proportion")))
        >>> {name: len(edges) for name, edges in truths.items()}
        {'resample': 3, 'acdc-zero': 5}
    """
    by_ablation = {"resample": derived.resample, "zero": derived.zero}
    return {name: by_ablation[a] for name, a in ground_truth_names(program).items()}


def necessary_alone_counts(
    compiled: CompiledTracr, batches: tuple[PromptBatch, ...] | None = None
) -> dict[str, int]:
    """Per ground truth, how many of its edges change the output when ablated alone
    (with the ground truth's ablation, float64) on ``batches`` (default: the data the
    circuits are derived on).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> necessary_alone_counts(load_compiled("proportion"))
        {'resample': 3, 'zero': 5}
    """
    derived = derived_circuits(compiled)
    if batches is None:
        batches = derivation_batches(compiled)
    data = DerivationData.from_batches(batches)
    patchable = PatchableModel.wrap(float64_model(compiled.to_model("cpu")))
    counts = {}
    with one_thread():
        for name, circuit in (("resample", derived.resample), ("zero", derived.zero)):
            changes = necessary_alone(patchable, circuit, data, name, derived.tol)
            counts[name] = sum(change > derived.tol for change in changes.values())
    return counts


def _official(program: str, ground_truth: str) -> str | None:
    return OFFICIAL_SOURCES.get(program, {}).get(ground_truth)


def load_tracr_task(
    program: str,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache_dir: str | os.PathLike | None = None,
    n_validation: int | None = None,
) -> Task:
    """A tracr task: the converted model, seeded batches and both ground truths.

    Args:
        program: A program of :func:`harness.tasks.tracr.programs.all_programs`.
        seed: Seeds the splits and the corrupt prompts.
        n_examples: Train and test prompts each (default 121 for reverse, 512 for
            proportion, 64 for the other programs).
        batch_size: Prompts per batch (default: one batch per split).
        device: Where the model and batches live (``"auto"``: CUDA when present).
        cache_dir: A cache of converted weights to read, or compile into (default: the
            weights shipped in the package, ``harness/tasks/tracr/weights``).
        n_validation: Validation prompts (see :func:`make_splits`).

    Example:
        >>> task = load_tracr_task("proportion", n_examples=8, device="cpu")
        >>> task.faithfulness_target, tuple(task.train[0].answers.shape), len(task.validation)
        ('mse', (8, 5), 1)
    """
    spec = all_programs()[program]
    compiled = load_compiled(program, cache_dir)
    target = resolve_device(device)
    model = compiled.to_model(target)
    splits = make_splits(compiled, seed, n_examples, n_validation, batch_size)
    check_model_computes_answers(compiled, model, [*splits.train, *splits.validation, *splits.test])
    derived = derived_circuits(compiled)
    circuits = ground_truth_circuits(derived, program)
    ablations = ground_truth_names(program)
    source = (
        "shipped with the weights (harness tasks build)"
        if compiled.derived is not None
        else "derived at load"
    )
    info: dict[str, Any] = {
        "program": list(spec.source),
        "vocab": list(spec.vocab),
        "max_seq_len": spec.max_seq_len,
        "compiler_bos": BOS,
        "tracr": f"tracr-pypi {compiled.tracr_version}",
        "weights_cache": str(
            cache_path(program, cache_dir) if cache_dir is not None else packaged_path(program)
        ),
        "output_labels": list(compiled.output_labels),
        "output_positions": list(splits.train[0].output_positions),
        "dataset": (
            f"clean: distinct full-length inputs, disjoint train/test draws, validation "
            f"never in test (seed {seed}); corrupt: {spec.corrupt}"
        ),
        "splits": {
            name: sum(b.size for b in batches) for name, batches in splits._asdict().items()
        },
        "ground_truths": {
            name: {
                "ablation": ablations[name],
                "n_edges": len(edges),
                "source": (
                    f"derived by harness.tasks.tracr.derive (tol {derived.tol:g}, seed "
                    f"{DERIVATION_SEED} default splits; {source})"
                    + (f"; official: {official}" if (official := _official(program, name)) else "")
                ),
            }
            for name, edges in circuits.items()
        },
        "derivation": {
            "structural_edges": len(derived.structural),
            "tol": derived.tol,
            "resample_start": derived.resample_start,
            "data": f"seed {DERIVATION_SEED}, default splits",
        },
    }
    for name, edges in circuits.items():
        if not edges:
            raise ValueError(
                f"tracr-{program}: its derived {name!r} ground truth is empty (with "
                f"{ablations[name]} ablation no edge changes the output on its data, e.g. a "
                "program of the length only): no ROC can be scored against it"
            )
    return Task(
        slug=f"tracr-{program}",
        model=model,
        train=tuple(b.to(target) for b in splits.train),
        test=tuple(b.to(target) for b in splits.test),
        validation=tuple(b.to(target) for b in splits.validation),
        circuits=circuits,
        default_ground_truth="resample",
        faithfulness_target="mse" if spec.numerical else "kl_div",
        info=info,
        aliases=dict(ALIASES) if program in OFFICIAL_SOURCES else {},
    )


ANSWER_TOLERANCE = 1e-4
"""Largest difference, relative to ``max(1, |answer|)``, between a numerical output and
its answer (the suite's compiled models are within 3e-6)."""


def check_model_computes_answers(
    compiled: CompiledTracr, model: Any, batches: list[PromptBatch]
) -> None:
    """A one-line ValueError unless the converted model gives every batch's answers (the
    program's, from its reference or tracr's RASP interpreter). tracr compiles some
    programs inexactly (a numerical MLP cuts negative values at 0, approximates a
    numerical map between grid points): scoring circuits against answers the model does
    not give would measure nothing.

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> compiled = load_compiled("reverse")
        >>> batches = make_splits(compiled, n_examples=4).test
        >>> check_model_computes_answers(compiled, compiled.to_model("cpu"), list(batches))
    """
    device = next(model.parameters()).device
    wrong, total, first = 0, 0, None
    for batch in batches:
        batch = batch.to(device)
        with torch.no_grad():
            out = batch.output_logits(model(batch.clean))  # [batch, n_out, d_out]
        if batch.is_regression:
            got, want = out[..., 0], batch.answers  # [batch, n_out] each
            bad = (got - want).abs() > ANSWER_TOLERANCE * want.abs().clamp(min=1.0)
        else:
            got, want = out.argmax(-1), batch.answers[..., 0]  # [batch, n_out] each
            bad = got != want
        wrong += int(bad.any(-1).sum())
        total += batch.size
        if first is None and bool(bad.any()):
            row, column = (int(i) for i in bad.nonzero()[0])
            first = (batch.clean[row], column, got[row, column], want[row, column])
    if first is None:
        return
    tokens, column, got_value, want_value = first
    decode = {token: value for value, token in compiled.input_encoding.items()}
    classes = {index: value for value, index in (compiled.output_encoding or {}).items()}

    def shown(value: Tensor) -> Any:
        return round(float(value), 6) if compiled.output_encoding is None else classes[int(value)]

    position = output_positions(compiled)[column]
    raise ValueError(
        f"tracr-{compiled.program}: the compiled model does not compute the program on "
        f"{wrong} of {total} prompts (e.g. input {[decode[int(t)] for t in tokens[1:]]}, "
        f"position {position}: model {shown(got_value)!r}, program {shown(want_value)!r}); "
        "tracr compiles some programs inexactly (numerical MLPs)"
    )


def _loader(program: str) -> Callable[..., Task]:
    def load(
        seed: int = 0,
        n_examples: int | None = None,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        cache_dir: str | os.PathLike | None = None,
        n_validation: int | None = None,
    ) -> Task:
        return load_tracr_task(
            program, seed, n_examples, batch_size, device, cache_dir, n_validation
        )

    load.__name__ = load.__qualname__ = f"load_{program.replace('-', '_')}"
    load.__doc__ = f"``tracr-{program}``; options as :func:`load_tracr_task`."
    return load


load_reverse = _loader("reverse")
load_proportion = _loader("proportion")

_EDGES = {"reverse": 77, "proportion": 23}
_KIND = {True: "numerical", False: "categorical"}


def task_spec(name: str, program: TracrProgram) -> TaskSpec:
    """The registry entry of ``program`` as the task ``tracr-<name>``.

    Example:
        >>> task_spec("hist", builtin_programs()["hist"]).description
        'tracr-compiled how often each token occurs (lib.make_hist) (categorical)'
    """
    what = {
        "reverse": "sequence reversal over {1,2,3} (77 edges; categorical)",
        "proportion": "fraction of 'x' so far over {w,x,y,z} (23 edges; numerical)",
    }.get(name, f"{program.description or name} ({_KIND[program.numerical]})")
    return TaskSpec(
        slug=f"tracr-{name}",
        label=f"tracr {name}",
        loader=load_reverse
        if name == "reverse"
        else load_proportion
        if name == "proportion"
        else _loader(name),
        ground_truths=tuple(ground_truth_names(name)),
        ground_truth_aliases=tuple(ALIASES) if name in OFFICIAL_SOURCES else (),
        needs_weights=False,
        description=f"tracr-compiled {what}",
        numerical_output=program.numerical,
        summary=lambda name=name: packaged_summary(name),
        check_options=lambda options, name=name: check_options(name, options),
    )


def suite_task_specs() -> tuple[TaskSpec, ...]:
    """The suite's tasks, in the suite's order (:mod:`harness.tasks.catalog` registers them).

    Example:
        >>> [spec.slug for spec in suite_task_specs()][:2]
        ['tracr-reverse', 'tracr-proportion']
    """
    return tuple(task_spec(name, program) for name, program in builtin_programs().items())


def forget_tracr_program(name: str) -> None:
    """Undo :func:`register_tracr_program` for a user's program (the suite's stay).

    Example:
        >>> forget_tracr_program("never-registered")
    """
    if name not in builtin_programs():
        forget_program(name)
        unregister(f"tracr-{name}")


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def register_tracr_program(program: TracrProgram) -> str:
    """Add a RASP program as the task ``tracr-<name>`` (in this process) and return that
    name. Its first load compiles it with tracr (seconds; memoised per process, or cached
    under ``task_options.cache_dir``) and derives its ``zero`` and ``resample`` ground
    truths from the weights, as for the suite's programs. Without a ``reference`` the
    answers come from tracr's RASP interpreter. For the command line, put the call in a
    Python file and pass it with ``harness --tasks-from FILE`` (or list such files in
    ``HARNESS_TASKS_FROM``, separated by ``:``); processes a sweep starts read them too.

    Raises a one-line ValueError for a name the suite uses, a program too large to compile
    in reasonable time (:mod:`harness.tasks.tracr.sizes`), an SOp of the other output
    kind than ``numerical`` says, a vocabulary with BOS or pad in it (or unhashable), a
    length below 1, fewer than 2 valid inputs, or a ``build`` that raises. Loading refuses,
    in one line, a program tracr cannot compile or compiles inexactly
    (:func:`check_model_computes_answers`).

    Example:
        >>> from harness.tasks import load
        >>> from harness.tasks.tracr.program import TracrProgram
        >>> def build_first():
        ...     from tracr.rasp import rasp
        ...     first = rasp.Select(rasp.indices, rasp.Map(lambda i: 0, rasp.indices),
        ...                         rasp.Comparison.EQ)
        ...     return rasp.Aggregate(first, rasp.tokens)   # the first token, everywhere
        >>> register_tracr_program(TracrProgram("doc-first", ("a", "b", "c"), 3, build_first))
        'tracr-doc-first'
        >>> task = load("tracr-doc-first", device="cpu")
        >>> task.train[0].size, sorted(task.circuits)
        (9, ['resample', 'zero'])
        >>> forget_tracr_program("doc-first")  # this process's registry as it was
    """
    if not isinstance(program, TracrProgram):
        kind = type(program).__name__
        raise ValueError(f"register_tracr_program takes a TracrProgram, got {kind}")
    name = program.name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"tracr program name {name!r}: use lower-case letters, digits, '-' and '_'"
        )
    if f"tracr-{name}" == SUITE_NAME:  # ``task: tracr-suite`` would run the suite instead
        raise ValueError(f"tracr program name {name!r}: {SUITE_NAME} is the suite's name")
    length = program.max_seq_len
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
        raise ValueError(f"tracr-{name}: max_seq_len must be a positive integer, got {length!r}")
    try:
        vocab = tuple(program.vocab)
        distinct = set(vocab)
    except TypeError:
        raise ValueError(
            f"tracr-{name}: vocab must be a tuple of hashable values, got {program.vocab!r}"
        ) from None
    if not vocab or len(distinct) != len(vocab) or {BOS, PAD} & distinct:
        raise ValueError(
            f"tracr-{name}: vocab must be distinct values without {BOS!r} or {PAD!r}, got {vocab!r}"
        )
    if not callable(program.build):
        raise ValueError(f"tracr-{name}: build must be a function returning the RASP output")
    check_program_size(name, len(vocab), length, program.inputs is None)
    add_program(program)
    try:
        split_sizes(name, count_inputs(name))  # too few inputs for a train and a test prompt
        try:
            output = program.build()
        except Exception as error:
            raise ValueError(f"tracr-{name}: build raised {one_line_error(error)}") from error
        from tracr.rasp import rasp

        if not isinstance(output, rasp.SOp):
            kind = type(output).__name__
            raise ValueError(f"tracr-{name}: build returned {kind}, not a RASP SOp")
        if rasp.is_numerical(output) != bool(program.numerical):
            kind = "numerical" if rasp.is_numerical(output) else "categorical"
            raise ValueError(
                f"tracr-{name}: the program's output is {kind}; "
                f"set numerical={rasp.is_numerical(output)}"
            )
    except Exception:
        forget_program(name)
        raise
    register(task_spec(name, program))
    return f"tracr-{name}"
