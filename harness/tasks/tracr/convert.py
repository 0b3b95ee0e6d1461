"""Convert tracr's compiled model to transformer_lens weights (:class:`CompiledTracr`).

tracr's compiled model has no LayerNorm and bidirectional attention:

- Q/K/V weights ``[d_model, n_heads * d_head]`` become ``[n_heads, d_model, d_head]``, the
  output weight ``[n_heads * d_head, d_model]`` becomes ``[n_heads, d_head, d_model]``;
  MLP weights and every bias are copied.
- The unembedding is a 0/1 projection onto the residual dimensions of the output: the
  labels ``<output label>:<value>`` (categorical) or ``<output label>`` (numerical), in
  the order of tracr's ``residual_labels``.

Converting reads tracr's arrays (numpy) and imports neither tracr nor JAX; compiling
(:mod:`harness.tasks.tracr.compile`) does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from harness.tasks.tracr.compiled import CompiledTracr
from harness.tasks.tracr.programs import program_named
from harness.tasks.tracr.rasp_graph import build_program
from harness.tasks.tracr.tracr_pypi import tracr_version


def convert(name: str, assembled: Any) -> CompiledTracr:
    """transformer_lens weights of a registered program's tracr ``AssembledTransformerModel``.

    Example:
        >>> from harness.tasks.tracr.compile import compile_rasp
        >>> compiled = convert("proportion", compile_rasp("proportion"))
        >>> compiled.config["n_layers"], compiled.output_labels
        (2, ('frac_prevs_7',))
    """
    program = program_named(name)
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
        >>> from harness.tasks.tracr.program import BOS, PAD
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
