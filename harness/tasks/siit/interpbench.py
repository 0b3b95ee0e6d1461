"""InterpBench's layout of a case, both ways: export a trained task's model, config and
ground truth as InterpBench lays them out, and read such a directory back.

A case directory holds ``ll_model.pth`` (the state dict), ``ll_model_cfg.pkl`` (the
``HookedTransformerConfig``, as a dict or pickled), ``edges.pkl`` (the ground truth: a list
of ``(source hook, destination hook)`` pairs, a head's hook followed by ``[head]``) and
``meta.json``. Reading loads the weights with ``weights_only=True`` and the pickles through
:func:`~harness.tasks.siit.plain_pickle.load_plain_pickle` (plain data only).

Hook names convert to the graph's names (:mod:`harness.engine.graph`): sources
``blocks.0.hook_resid_pre`` or ``hook_embed`` -> ``Resid Start``,
``blocks.L.attn.hook_result[h]`` or ``hook_z[h]`` -> ``AL.h``, ``blocks.L.hook_mlp_out`` or
``blocks.L.mlp.hook_post`` -> ``MLP L``; destinations ``blocks.L.hook_q_input[h]`` (``k``,
``v``) or ``blocks.L.attn.hook_q[h]`` -> ``AL.h.Q``, a whole head (its result hook) -> its
Q, K and V inputs, ``blocks.L.hook_mlp_in`` or ``blocks.L.mlp.hook_pre`` -> ``MLP L``, the
last block's ``hook_resid_post`` -> ``Resid End``.

Example:
    >>> interpbench_edge_names([("blocks.0.attn.hook_result[1]", "blocks.1.hook_resid_post")],
    ...                        n_layers=2)
    ['A0.1->Resid End']
    >>> interpbench_edge_names([("hook_embed", "blocks.1.attn.hook_result[0]")], n_layers=2)
    ['Resid Start->A1.0.K', 'Resid Start->A1.0.Q', 'Resid Start->A1.0.V']
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from harness.engine.graph import RESID_END, RESID_START
from harness.tasks.siit.plain_pickle import load_plain_pickle
from harness.util.user_files import read_user_file

MODEL_FILE, CONFIG_FILE, EDGES_FILE, META_FILE = (
    "ll_model.pth",
    "ll_model_cfg.pkl",
    "edges.pkl",
    "meta.json",
)
PICKLE_LIMIT = 16 * 2**20
"""The largest config or edges pickle read (bytes)."""
_HEAD_HOOK = re.compile(r"^blocks\.(\d+)\.(?:attn\.)?hook_(\w+)\[(\d+)\]$")
_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.(?:mlp\.)?hook_(\w+)$")
_QKV = {"q_input": "Q", "k_input": "K", "v_input": "V", "q": "Q", "k": "K", "v": "V"}


def _source(hook: str) -> str:
    if hook in ("hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"):
        return RESID_START
    head = _HEAD_HOOK.match(hook)
    if head and head[2] in ("result", "z"):
        return f"A{head[1]}.{head[3]}"
    block = _BLOCK_HOOK.match(hook)
    if block and block[2] in ("mlp_out", "post"):
        return f"MLP {block[1]}"
    raise ValueError(f"edges.pkl: {hook!r} is no source this harness knows")


def _destinations(hook: str, n_layers: int) -> list[str]:
    head = _HEAD_HOOK.match(hook)
    if head and head[2] in _QKV:
        return [f"A{head[1]}.{head[3]}.{_QKV[head[2]]}"]
    if head and head[2] in ("result", "z"):
        return [f"A{head[1]}.{head[3]}.{x}" for x in "KQV"]
    block = _BLOCK_HOOK.match(hook)
    if block and block[2] in ("mlp_in", "pre", "mlp_out", "post"):
        return [f"MLP {block[1]}"]
    if hook in (f"blocks.{n_layers - 1}.hook_resid_post", "ln_final.hook_normalized"):
        return [RESID_END]
    raise ValueError(f"edges.pkl: {hook!r} is no destination this harness knows")


def interpbench_edge_names(pairs: list[Any], n_layers: int) -> list[str]:
    """The graph's edge names of InterpBench's ``(source hook, destination hook)`` pairs,
    sorted; a one-line ValueError for a pair it cannot read."""
    names = set()
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"edges.pkl: {pair!r} is not a (source, destination) pair")
        src, dest = (str(x) for x in pair)
        names.update(f"{_source(src)}->{d}" for d in _destinations(dest, n_layers))
    return sorted(names)


def _hook_pairs(edges: list[str], n_layers: int) -> list[tuple[str, str]]:
    """InterpBench hook pairs of the graph's edge names (the inverse of the above)."""
    pairs = []
    for edge in edges:
        src, dest = edge.split("->")
        if src == RESID_START:
            src_hook = "blocks.0.hook_resid_pre"
        elif src.startswith("MLP "):
            src_hook = f"blocks.{src[4:]}.hook_mlp_out"
        else:
            layer, head = src[1:].split(".")
            src_hook = f"blocks.{layer}.attn.hook_result[{head}]"
        if dest == RESID_END:
            dest_hook = f"blocks.{n_layers - 1}.hook_resid_post"
        elif dest.startswith("MLP "):
            dest_hook = f"blocks.{dest[4:]}.hook_mlp_in"
        else:
            layer, head, qkv = dest[1:].split(".")
            dest_hook = f"blocks.{layer}.hook_{qkv.lower()}_input[{head}]"
        pairs.append((src_hook, dest_hook))
    return pairs


def export_interpbench(
    directory: str | os.PathLike,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    edges: list[str],
    meta: dict[str, Any],
) -> Path:
    """Write a case directory (see the module) and return it."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, folder / MODEL_FILE)
    plain = {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool, type(None)))}
    (folder / CONFIG_FILE).write_bytes(pickle.dumps(plain))
    (folder / EDGES_FILE).write_bytes(pickle.dumps(_hook_pairs(edges, int(config["n_layers"]))))
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def read_interpbench(directory: str | os.PathLike) -> dict[str, Any]:
    """A case directory as ``config`` (dict), ``state_dict``, ``edges`` (the graph's
    names) and ``meta``; one-line ValueErrors for what is missing or unreadable."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a directory (an InterpBench case folder)")
    for name in (MODEL_FILE, CONFIG_FILE, EDGES_FILE):
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: no {name} (an InterpBench case holds {MODEL_FILE}, "
                             f"{CONFIG_FILE}, {EDGES_FILE})")  # fmt: skip
    config = dict(
        load_plain_pickle(read_user_file(folder / CONFIG_FILE, "InterpBench config", PICKLE_LIMIT))
    )
    try:
        state_dict = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"{folder / MODEL_FILE}: not loadable as plain weights ({message})"
        ) from None
    pairs = load_plain_pickle(
        read_user_file(folder / EDGES_FILE, "InterpBench edges", PICKLE_LIMIT)
    )
    if not isinstance(pairs, (list, tuple, set)):
        raise ValueError(f"{folder / EDGES_FILE}: not a list of (source, destination) pairs")
    meta_path = folder / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    n_layers = config.get("n_layers")
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"{folder / CONFIG_FILE}: n_layers must be a positive integer")
    return {
        "config": config,
        "state_dict": state_dict,
        "edges": interpbench_edge_names(list(pairs), n_layers),
        "meta": meta,
    }
