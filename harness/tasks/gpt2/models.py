"""Pretrained transformer_lens models, from a local directory, the hub, or random weights.

Three ways to get a model, tried in this order:

1. ``model_path`` (or ``$HARNESS_MODEL_DIR``): a directory the user downloaded the model
   to. A Hugging Face checkpoint (``config.json`` with ``model_type``, e.g. ``gpt2``) or a
   transformer_lens-format checkpoint as NeelNanda's toy models ship (``config.json`` in
   their format and ``*final.pth``). No network is used.
2. The model hub, unless ``HF_HUB_OFFLINE`` is set and the model is not in the local cache.
3. Neither: a one-line :class:`ValueError` that says how to provide the weights.

``random_weights=True`` skips all three and builds a model of the real shape with seeded
random weights, so everything but the weights can be tested offline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.engine.device import resolve_device
from harness.tasks.gpt2.tokenizer import GPT2_VOCAB_SIZE, gpt2_tokenizer


@dataclass(frozen=True)
class ModelSpec:
    """A pretrained model the tasks use.

    Attributes:
        name: transformer_lens's name, e.g. ``"gpt2"``.
        hub_name: The Hugging Face repository.
        config: ``HookedTransformerConfig`` fields of the random-weights model (the vocab
            size is set from the tokenizer).
        tokenizer_note: Where the real tokenizer comes from, for error messages.
    """

    name: str
    hub_name: str
    config: dict[str, Any]
    tokenizer_note: str = ""


GPT2_SMALL = ModelSpec(
    name="gpt2",
    hub_name="gpt2",
    config=dict(
        n_layers=12, n_heads=12, d_model=768, d_head=64, d_mlp=3072, n_ctx=1024,
        act_fn="gelu_new", normalization_type="LN", eps=1e-5, positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
    ),
)  # fmt: skip
ATTN_ONLY_4L = ModelSpec(
    name="attn-only-4l",
    hub_name="NeelNanda/Attn_Only_4L512W_C4_Code",
    config=dict(
        n_layers=4, n_heads=8, d_model=512, d_head=64, d_mlp=2048, n_ctx=2048, act_fn="solu_ln",
        attn_only=True, normalization_type="LN", positional_embedding_type="shortformer",
        original_architecture="neel",
    ),
    tokenizer_note="NeelNanda/gpt-neox-tokenizer-digits",
)  # fmt: skip


def model_dir(model_path: str | os.PathLike | None) -> Path | None:
    """The local weights directory: ``model_path``, else ``$HARNESS_MODEL_DIR``, else None."""
    chosen = model_path if model_path is not None else os.environ.get("HARNESS_MODEL_DIR")
    return Path(chosen).expanduser() if chosen else None


def load_model(
    spec: ModelSpec,
    model_path: str | os.PathLike | None = None,
    random_weights: bool = False,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> tuple[Any, Any, str]:
    """A ``HookedTransformer`` with the hooks edge patching needs, its tokenizer, its source.

    Args:
        spec: Which model.
        model_path: A local directory holding the model (``$HARNESS_MODEL_DIR`` if None).
        random_weights: Build the model's shape with random weights (seeded by ``seed``)
            and GPT-2's offline tokenizer; the vocabulary matches the tokenizer.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        seed: Seed of the random weights.

    Returns:
        ``(model, tokenizer, source)``, where ``source`` is ``"random"``, the directory,
        or ``"hub"``.

    Raises:
        ValueError: In one line, when no weights can be had.

    Example:
        >>> model, tokenizer, source = load_model(ATTN_ONLY_4L, random_weights=True,
        ...                                       device="cpu")
        >>> model.cfg.n_layers, model.cfg.d_vocab, source
        (4, 50257, 'random')
    """
    target = resolve_device(device)
    if random_weights:
        model, tokenizer, source = _random_model(spec, seed), None, "random"
        tokenizer = model.tokenizer
    else:
        directory = model_dir(model_path)
        if directory is not None:
            model, tokenizer = _local_model(spec, directory)
            source = str(directory)
        else:
            model, tokenizer = _hub_model(spec), None
            tokenizer, source = model.tokenizer, "hub"
    _check_shape(spec, model, source)
    model.set_use_split_qkv_input(True)
    if not model.cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    model.eval()
    return model.to(target, print_details=False), tokenizer, source


def _random_model(spec: ModelSpec, seed: int) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    tokenizer = gpt2_tokenizer()
    cfg = HookedTransformerConfig(
        **spec.config, d_vocab=len(tokenizer), model_name=spec.name, device="cpu"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)


def _local_model(spec: ModelSpec, directory: Path) -> tuple[Any, Any]:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens import loading_from_pretrained as loading

    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ValueError(
            f"model directory {str(directory)!r} has no config.json; it must hold the "
            f"downloaded {spec.hub_name} model (--model-path DIR or HARNESS_MODEL_DIR)"
        )
    raw = json.loads(config_file.read_text())
    tokenizer = _local_tokenizer(spec, directory)
    if "model_type" in raw:  # a Hugging Face checkpoint
        from transformers import AutoModelForCausalLM

        hf_model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)
        cfg = loading.get_pretrained_model_config(
            str(directory), hf_cfg=hf_model.config.to_dict(), fold_ln=True, device="cpu"
        )
        state = loading.get_pretrained_state_dict(str(directory), cfg, hf_model)
        fold = dict(fold_ln=True, center_writing_weights=True, center_unembed=True)
    else:  # transformer_lens format (NeelNanda's toy models)
        checkpoints = sorted(directory.glob("*final.pth")) or sorted(directory.glob("*.pth"))
        if not checkpoints:
            raise ValueError(f"model directory {str(directory)!r} has no *.pth checkpoint")
        cfg = HookedTransformerConfig(**_neel_config(raw), model_name=spec.name, device="cpu")
        state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)
        shortformer = cfg.positional_embedding_type == "shortformer"
        fold = dict(fold_ln=not shortformer, center_writing_weights=not shortformer,
                    center_unembed=not shortformer)  # fmt: skip
        if fold["fold_ln"] and cfg.normalization_type == "LN":
            cfg.normalization_type = "LNPre"
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(state, fold_value_biases=True, **fold)
    return model, tokenizer


def _neel_config(raw: dict[str, Any]) -> dict[str, Any]:
    """``HookedTransformerConfig`` fields from a config.json in NeelNanda's format."""
    cfg = {k: raw[k] for k in ("d_model", "n_layers", "d_mlp", "d_head", "n_heads", "n_ctx")}
    cfg.update(d_vocab=raw["d_vocab"], act_fn=raw["act_fn"], attn_only=raw["attn_only"])
    cfg["normalization_type"] = raw.get("normalization", raw.get("normalization_type"))
    cfg["positional_embedding_type"] = "shortformer" if raw.get("shortformer_pos") else "standard"
    cfg["final_rms"] = raw.get("final_rms", False)
    return cfg


def _local_tokenizer(spec: ModelSpec, directory: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, TypeError):
        if spec.tokenizer_note:
            raise ValueError(
                f"model directory {str(directory)!r} has no tokenizer: save "
                f"{spec.tokenizer_note} there (tokenizer.save_pretrained(DIR))"
            ) from None
        return gpt2_tokenizer()


def _hub_model(spec: ModelSpec) -> Any:
    from transformer_lens import HookedTransformer

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline and not _in_hub_cache(spec.hub_name):
        raise ValueError(_missing_weights_message(spec, "HF_HUB_OFFLINE is set"))
    try:
        return HookedTransformer.from_pretrained(spec.name, device="cpu")
    except Exception as error:  # network, cache and hub errors all mean: no weights
        reason = f"the hub failed ({type(error).__name__})"
        raise ValueError(_missing_weights_message(spec, reason)) from None


def _in_hub_cache(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo, "config.json"), str)
    except Exception:
        return False


def _missing_weights_message(spec: ModelSpec, reason: str) -> str:
    return (
        f"no weights for {spec.name} ({spec.hub_name}): {reason} and no local copy was "
        f"given; download it to a directory and pass --model-path DIR or set "
        f"HARNESS_MODEL_DIR=DIR (or use random_weights=True to test without weights)"
    )


def _check_shape(spec: ModelSpec, model: Any, source: str) -> None:
    cfg = model.cfg
    wanted = {k: spec.config[k] for k in ("n_layers", "n_heads", "d_model")}
    found = {k: getattr(cfg, k) for k in wanted}
    if found != wanted:
        raise ValueError(f"the model from {source} has shape {found}, {spec.name} has {wanted}")
    if spec is GPT2_SMALL and cfg.d_vocab != GPT2_VOCAB_SIZE:
        raise ValueError(f"the model from {source} has {cfg.d_vocab} tokens, GPT-2 has 50257")
