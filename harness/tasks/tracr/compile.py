"""Compile RASP programs with tracr and convert them to transformer_lens models.

tracr (``tracr-pypi``, with JAX) is imported only to compile. The converted weights are
stored as plain tensors, so a load needs neither tracr nor JAX: by default
:func:`load_compiled` reads the file shipped in the package
(``harness/tasks/tracr/weights/tracr-<program>.pt.gz``, written by ``harness tasks
build``, with the derived circuits); given a ``cache_dir`` it reads
``<cache_dir>/tracr-<program>-tracr-pypi-<version>.pt``, and compiles and writes it only
when it is missing. Where tracr-pypi is not installed
(a GPU machine given only the cache), the cache of the pinned version is read.

Conversion (tracr's compiled model has no LayerNorm and bidirectional attention):

- Q/K/V weights ``[d_model, n_heads * d_head]`` become ``[n_heads, d_model, d_head]``, the
  output weight ``[n_heads * d_head, d_model]`` becomes ``[n_heads, d_head, d_model]``;
  MLP weights and every bias are copied.
- The unembedding is a 0/1 projection onto the residual dimensions of the output: the
  labels ``<output label>:<value>`` (categorical) or ``<output label>`` (numerical), in
  the order of tracr's ``residual_labels``.
- RASP labels carry a global counter (``aggregate_1``), so a program's residual layout
  would depend on what the process built before. :func:`build_program` pins every label
  to fixed ids, those of a fresh process that compiles reverse and then proportion; this
  reproduces the residual labels of the official circuit files exactly.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harness.util.did_you_mean import did_you_mean

CACHE_ENV = "HARNESS_CACHE_DIR"
CACHE_FORMAT = 1
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


def _build_reverse() -> Any:
    from tracr.rasp import rasp

    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    opp_index = (length - rasp.indices) - 1
    flip = rasp.Select(rasp.indices, opp_index, rasp.Comparison.EQ)
    return rasp.Aggregate(flip, rasp.tokens)


def _build_proportion() -> Any:
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return lib.make_frac_prevs(rasp.tokens == "x")


PROGRAMS: dict[str, TracrProgram] = {
    "reverse": TracrProgram(
        name="reverse",
        vocab=(1, 2, 3),
        max_seq_len=5,
        first_label_id=1,
        numerical=False,
        source=(
            "length = SelectorWidth(Select(tokens, tokens, TRUE))",
            "opp_index = (length - indices) - 1",
            "flip = Select(indices, opp_index, EQ)",
            "reverse = Aggregate(flip, tokens)",
        ),
        build=_build_reverse,
    ),
    "proportion": TracrProgram(
        name="proportion",
        vocab=("w", "x", "y", "z"),
        max_seq_len=5,
        first_label_id=7,
        numerical=True,
        source=("frac_prevs = make_frac_prevs(tokens == 'x')",),
        build=_build_proportion,
    ),
}


@dataclass(frozen=True)
class CompiledTracr:
    """A compiled program as transformer_lens weights: what the cache holds.

    Attributes:
        program: The program's name.
        tracr_version: The ``tracr-pypi`` version that compiled it.
        config: ``HookedTransformerConfig`` keyword arguments.
        state_dict: The model's parameters (CPU tensors).
        input_encoding: Input value (``1``, ``"x"``, ``"BOS"``...) -> token id.
        output_encoding: Output value -> output class id (categorical), ``None`` if numerical.
        residual_labels: tracr's labels of the residual dimensions.
        output_labels: The labels the unembedding reads, one per output class.
        derived: The ground truths derived from these weights (plain data, see
            :func:`harness.tasks.tracr.tasks.circuits_payload`) where the file ships them
            (the package's files do), else ``None`` (derived at load).
    """

    program: str
    tracr_version: str
    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    input_encoding: dict[Any, int]
    output_encoding: dict[Any, int] | None
    residual_labels: tuple[str, ...]
    output_labels: tuple[str, ...]
    derived: dict[str, Any] | None = None

    def encode(self, values: list[Any]) -> list[int]:
        """Token ids of ``[BOS, *values]``.

        Example:
            >>> compiled = CompiledTracr("p", "1.0.0", {}, {}, {"BOS": 0, "x": 3}, None, (), ())
            >>> compiled.encode(["x", "x"])
            [0, 3, 3]
        """
        return [self.input_encoding[BOS]] + [self.input_encoding[v] for v in values]

    def to_model(self, device: str | torch.device = "cpu") -> Any:
        """A ``HookedTransformer`` with these weights, on ``device``."""
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        model = HookedTransformer(HookedTransformerConfig(**self.config))
        missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        params = dict(model.named_parameters())
        if unexpected or any(name in params for name in missing):
            raise ValueError(f"weights do not fit the model: {missing=}, {unexpected=}")
        return model.to(device, print_details=False).eval()

    def payload(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (loadable with ``weights_only=True``)."""
        payload = {
            "format": CACHE_FORMAT,
            "program": self.program,
            "tracr_version": self.tracr_version,
            "config": self.config,
            "state_dict": self.state_dict,
            "encodings": {"input": self.input_encoding, "output": self.output_encoding},
            "residual_labels": list(self.residual_labels),
            "output_labels": list(self.output_labels),
        }
        if self.derived is not None:
            payload["derived"] = self.derived
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CompiledTracr:
        return cls(
            program=payload["program"],
            tracr_version=payload["tracr_version"],
            config=payload["config"],
            state_dict=payload["state_dict"],
            input_encoding=payload["encodings"]["input"],
            output_encoding=payload["encodings"]["output"],
            residual_labels=tuple(payload["residual_labels"]),
            output_labels=tuple(payload["output_labels"]),
            derived=payload.get("derived"),
        )


PINNED_TRACR_VERSION = "1.0.0"  # pyproject.toml's pin


def tracr_version() -> str:
    """The installed ``tracr-pypi`` version, read without importing tracr or JAX.

    Example:
        >>> tracr_version()
        '1.0.0'
    """
    version = _installed_tracr_version()
    if version is None:
        raise ImportError(
            "the tracr tasks need tracr-pypi to compile their models: "
            f"pip install tracr-pypi=={PINNED_TRACR_VERSION}"
        )
    return version


def _installed_tracr_version() -> str | None:
    try:
        return importlib.metadata.version("tracr-pypi")
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_path(program: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted weights of ``program`` are cached.

    ``cache_dir``, else ``$HARNESS_CACHE_DIR``, else ``~/.cache/circuit-harness``.

    Example:
        >>> cache_path("reverse", "/tmp/c").name
        'tracr-reverse-tracr-pypi-1.0.0.pt'
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "circuit-harness"
    version = _installed_tracr_version() or PINNED_TRACR_VERSION
    from harness.tasks.tracr.programs import is_added

    if is_added(program):  # a user's program may change under its name: key by content
        program = f"{program}-{program_digest(program)}"
    return Path(cache_dir) / f"tracr-{program}-tracr-pypi-{version}.pt"


def program_digest(name: str) -> str:
    """16 hex digits that change when the program does: its settings and its RASP graph
    (every expression's type, label, encoding and arguments; functions by their code,
    constants and closure values).

    Example:
        >>> program_digest("reverse") == program_digest("reverse") != program_digest("sort")
        True
    """
    import hashlib

    program = _program(name)
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


PACKAGED_DIR = Path(__file__).resolve().parent / "weights"
_COMPILED: dict[tuple[str, str], CompiledTracr] = {}  # users' programs, compiled this process


def packaged_path(program: str, directory: str | os.PathLike | None = None) -> Path:
    """The weights (and derived circuits) of ``program`` shipped in the package.

    Example:
        >>> packaged_path("reverse").relative_to(PACKAGED_DIR.parent).as_posix()
        'weights/tracr-reverse.pt.gz'
    """
    return Path(directory or PACKAGED_DIR) / f"tracr-{program}.pt.gz"


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """A weights file's plain data (``torch.load`` with ``weights_only=True``; files
    ending in ``.gz`` are gzip-compressed: tracr's weights are mostly zeros, 10-90x)."""
    if str(path).endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            return torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True)


def write_payload(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``payload`` atomically (concurrent readers never see half a file); gzip
    with a fixed timestamp when ``path`` ends in ``.gz`` (same payload, same bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(data)
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def packaged_summary(program: str) -> dict[str, Any]:
    """Layers, heads, edges and circuit sizes of a shipped program, read from its file
    (no model is built).

    Example:
        >>> packaged_summary("reverse")["edges"], packaged_summary("reverse")["circuits"]
        (77, {'resample': 2, 'zero': 10})
    """
    from transformer_lens import HookedTransformerConfig

    from harness.engine.graph import EdgeGraph

    path = packaged_path(program)
    if not path.exists():
        return {}
    payload = read_payload(path)
    config = payload["config"]
    derived = payload.get("derived") or {}
    graph = EdgeGraph.from_config(HookedTransformerConfig(**config))
    return {
        "layers": config["n_layers"],
        "heads": config["n_heads"],
        "edges": graph.n_edges,
        "circuits": {name: len(derived[name]) for name in ("resample", "zero") if name in derived},
        "necessary_alone": derived.get("necessary_alone", {}),
    }


def build_program(name: str) -> Any:
    """The RASP output SOp of a program, with labels pinned as in a fresh process.

    Example:
        >>> build_program("reverse").label, build_program("proportion").label
        ('aggregate_1', 'frac_prevs_7')
    """
    program = _program(name)
    output = program.build()
    _pin_label_ids(output, program.first_label_id)
    return output


def compile_rasp(name: str) -> Any:
    """Compile a program with tracr: its ``AssembledTransformerModel`` (imports JAX).

    Example:
        >>> assembled = compile_rasp("reverse")
        >>> assembled.apply(["BOS", 1, 2, 3]).decoded
        ['BOS', 3, 2, 1]
    """
    from tracr.compiler import compiling

    program = _program(name)
    return compiling.compile_rasp_to_model(
        build_program(name),
        vocab=set(program.vocab),
        max_seq_len=program.max_seq_len,
        compiler_bos=BOS,
        compiler_pad=PAD,
    )


def convert(name: str, assembled: Any) -> CompiledTracr:
    """transformer_lens weights of a registered program's tracr ``AssembledTransformerModel``.

    Example:
        >>> compiled = convert("proportion", compile_rasp("proportion"))
        >>> compiled.config["n_layers"], compiled.output_labels
        (2, ('frac_prevs_7',))
    """
    program = _program(name)
    output_label = build_program(name).label  # pinned, so the compiled model's label
    return convert_assembled(assembled, output_label, program.numerical, name)


def convert_assembled(
    assembled: Any, output_label: str, numerical: bool, name: str = "program"
) -> CompiledTracr:
    """transformer_lens weights of any tracr ``AssembledTransformerModel``.

    Args:
        assembled: What ``tracr.compiler.compiling.compile_rasp_to_model`` returned.
        output_label: The label of the program's output SOp (``sop.label``).
        numerical: Whether that output is numerical (``rasp.is_numerical(sop)``).
        name: The program's name (the model is ``tracr-<name>``).

    Example:
        >>> from tracr.compiler import compiling, lib
        >>> from tracr.rasp import rasp
        >>> sop = lib.make_hist()
        >>> assembled = compiling.compile_rasp_to_model(
        ...     sop, vocab={"a", "b"}, max_seq_len=3, compiler_bos=BOS, compiler_pad=PAD)
        >>> compiled = convert_assembled(assembled, sop.label, rasp.is_numerical(sop), "h")
        >>> tokens = torch.tensor([compiled.encode(["a", "b", "a"])])
        >>> compiled.to_model()(tokens)[0, 1:].argmax(-1).tolist()  # counts (classes 0..3)
        [2, 1, 2]
    """
    params = {k: {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in assembled.params.items()}
    cfg = assembled.model_config
    labels = tuple(assembled.residual_labels)
    n_ctx, d_model = params["pos_embed"]["embeddings"].shape
    n_heads, d_head, d_mlp = cfg.num_heads, cfg.key_size, cfg.mlp_hidden_size

    if numerical:
        output_labels: tuple[str, ...] = (output_label,)
        output_encoding = None
    else:
        encoding = dict(assembled.output_encoder.encoding_map)
        by_class = sorted(encoding, key=encoding.get)
        output_labels = tuple(f"{output_label}:{value}" for value in by_class)
        output_encoding = encoding
    if not output_labels or any(label not in labels for label in output_labels):
        raise ValueError(f"no residual dimensions for the output ({output_label}) in {labels}")
    unembed = torch.zeros(d_model, len(output_labels))  # [d_model, d_vocab_out]
    for column, label in enumerate(output_labels):
        unembed[labels.index(label), column] = 1.0

    def tensor(array: np.ndarray) -> Tensor:
        return torch.tensor(np.array(array, dtype=np.float32))

    state: dict[str, Tensor] = {
        "embed.W_E": tensor(params["token_embed"]["embeddings"]),  # [d_vocab, d_model]
        "pos_embed.W_pos": tensor(params["pos_embed"]["embeddings"]),  # [n_ctx, d_model]
        "unembed.W_U": unembed,
        "unembed.b_U": torch.zeros(len(output_labels)),
    }
    for layer in range(cfg.num_layers):
        attn, mlp = f"transformer/layer_{layer}/attn", f"transformer/layer_{layer}/mlp"
        for kind in ("query", "key", "value"):
            letter = kind[0].upper()
            w = tensor(params[f"{attn}/{kind}"]["w"])  # [d_model, n_heads * d_head]
            state[f"blocks.{layer}.attn.W_{letter}"] = w.reshape(d_model, n_heads, d_head).permute(
                1, 0, 2
            )  # [n_heads, d_model, d_head]
            b = tensor(params[f"{attn}/{kind}"]["b"])
            state[f"blocks.{layer}.attn.b_{letter}"] = b.reshape(n_heads, d_head)
        w_o = tensor(params[f"{attn}/linear"]["w"])  # [n_heads * d_head, d_model]
        state[f"blocks.{layer}.attn.W_O"] = w_o.reshape(n_heads, d_head, d_model)
        state[f"blocks.{layer}.attn.b_O"] = tensor(params[f"{attn}/linear"]["b"])
        state[f"blocks.{layer}.mlp.W_in"] = tensor(params[f"{mlp}/linear_1"]["w"])
        state[f"blocks.{layer}.mlp.b_in"] = tensor(params[f"{mlp}/linear_1"]["b"])
        state[f"blocks.{layer}.mlp.W_out"] = tensor(params[f"{mlp}/linear_2"]["w"])
        state[f"blocks.{layer}.mlp.b_out"] = tensor(params[f"{mlp}/linear_2"]["b"])

    config = {
        "n_layers": cfg.num_layers,
        "n_heads": n_heads,
        "d_model": int(d_model),
        "d_head": d_head,
        "d_mlp": d_mlp,
        "n_ctx": int(n_ctx),
        "d_vocab": int(params["token_embed"]["embeddings"].shape[0]),
        "d_vocab_out": len(output_labels),
        "act_fn": "relu",
        "normalization_type": None,
        "attention_dir": "bidirectional",
        "model_name": f"tracr-{name}",
    }
    return CompiledTracr(
        program=name,
        tracr_version=tracr_version(),
        config=config,
        state_dict=state,
        input_encoding=dict(assembled.input_encoder.encoding_map),
        output_encoding=output_encoding,
        residual_labels=labels,
        output_labels=output_labels,
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
    from harness.tasks.tracr.programs import is_added

    _program(name)  # unknown names: one line, with a did-you-mean
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


def _program(name: str) -> TracrProgram:
    from harness.tasks.tracr.programs import all_programs

    programs = all_programs()
    if name not in programs:
        hint = did_you_mean(name, programs)
        raise ValueError(f"unknown tracr program {name!r} (known: {', '.join(programs)}){hint}")
    return programs[name]


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
