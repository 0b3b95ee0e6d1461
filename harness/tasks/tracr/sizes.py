"""How large a user's RASP program may be: refused up front, before tracr compiles it.

A 10,000-token vocabulary compiled for ever with growing memory: tracr builds one-hot
residual dimensions and MLP tables per token, and the task builder enumerates every input
(``len(vocab) ** max_seq_len`` of them) to make its splits and derive its ground truths.
"""

from __future__ import annotations

MAX_VOCAB = 100
MAX_SEQ_LEN = 16
MAX_INPUTS = 100_000
"""Sizes of a user's program that tracr and the task builder handle in about a minute and
under 1 GiB (measured on 2 busy CPU cores: vocabulary 10 x length 5, 10^5 inputs, loads in
45 s at 830 MiB; vocabulary 100 x length 2 in 51 s; vocabulary 100 x length 5 and 1,000 x 5
had not loaded after 120 s). Every input is enumerated, so ``len(vocab) ** max_seq_len`` is
bounded too. The suite's largest: vocabulary 6, length 8, 3,125 inputs."""


def check_program_size(name: str, vocab: int, length: int, enumerated: bool = True) -> None:
    """A one-line ValueError for a program larger than :data:`MAX_VOCAB`,
    :data:`MAX_SEQ_LEN` or (``enumerated``: every sequence over the vocabulary is an input)
    :data:`MAX_INPUTS`; it would compile for minutes or hours, its memory growing.

    Example:
        >>> check_program_size("big", vocab=10_000, length=5)
        Traceback (most recent call last):
        ...
        ValueError: tracr-big: a vocabulary of 10000 tokens; at most 100 compile in reasonable time
    """
    if vocab > MAX_VOCAB:
        raise ValueError(
            f"tracr-{name}: a vocabulary of {vocab} tokens; at most {MAX_VOCAB} compile in "
            "reasonable time"
        )
    if length > MAX_SEQ_LEN:
        raise ValueError(
            f"tracr-{name}: max_seq_len {length}; at most {MAX_SEQ_LEN} compile in reasonable time"
        )
    if enumerated and vocab**length > MAX_INPUTS:
        raise ValueError(
            f"tracr-{name}: {vocab}^{length} = {vocab**length:.3g} inputs, each enumerated; at "
            f"most {MAX_INPUTS:,} (give fewer tokens, a shorter length, or the inputs)"
        )
