"""The files a compiled program's weights live in: where they are, read and written.

A file holds :meth:`~harness.tasks.tracr.compiled.CompiledTracr.payload`'s plain data
(``torch.save``; ``torch.load`` with ``weights_only=True``). The package ships one per
suite program (:func:`packaged_path`: ``harness/tasks/tracr/weights/tracr-<program>.pt.gz``,
gzip-compressed, with the derived circuits; written by ``harness tasks build``); a cache
(:func:`cache_path`) holds the weights compiled on this machine, one file per program and
``tracr-pypi`` version (where tracr-pypi is not installed, the pinned version's).

Example:
    >>> packaged_path("hist").name, cache_path("hist", "/tmp/c").name
    ('tracr-hist.pt.gz', 'tracr-hist-tracr-pypi-1.0.0.pt')
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from harness.engine.graph import EdgeGraph
from harness.tasks.tracr.programs import is_added
from harness.tasks.tracr.rasp_graph import program_digest
from harness.tasks.tracr.tracr_pypi import PINNED_TRACR_VERSION, installed_tracr_version

CACHE_ENV = "HARNESS_CACHE_DIR"
PACKAGED_DIR = Path(__file__).resolve().parent / "weights"


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


def cache_path(program: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted weights of ``program`` are cached.

    ``cache_dir``, else ``$HARNESS_CACHE_DIR``, else ``~/.cache/circuit-harness``.

    Example:
        >>> cache_path("reverse", "/tmp/c").name
        'tracr-reverse-tracr-pypi-1.0.0.pt'
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "circuit-harness"
    version = installed_tracr_version() or PINNED_TRACR_VERSION
    if is_added(program):  # a user's program may change under its name: key by content
        program = f"{program}-{program_digest(program)}"
    return Path(cache_dir) / f"tracr-{program}-tracr-pypi-{version}.pt"
