"""What W&B needs from the machine, checked before each ``wandb.init``, each problem said once.

W&B left alone misbehaves in three ways seen here:

- online without a network, ``wandb.init`` retries for about 90 s per run, and Ctrl-C or
  SIGTERM wait for it: a TCP connection to the server (``WANDB_BASE_URL``, default
  ``https://api.wandb.ai``) is tried first, for :data:`PROBE_SECONDS`; if none opens, the
  run logs offline instead (``wandb sync`` it later);
- a W&B folder that cannot be written made W&B fall back, silently, to a shared folder under
  the system's temporary directory: W&B logging is then off (the records are the results);
- an unset or read-only ``HOME`` gave some 27 lines of W&B's own logging: its config,
  cache and data folders (and ``XDG_CACHE_HOME``, where its core service logs) go under the
  W&B folder instead.

Each problem is one warning line, once per process (:func:`warn_once`).
"""

from __future__ import annotations

import os
import socket
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit

PROBE_SECONDS = 3.0
DEFAULT_BASE_URL = "https://api.wandb.ai"
_WARNED: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Warn ``message`` (one line) the first time ``key`` is seen in this process."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def server_unreachable(base_url: str | None = None, timeout: float = PROBE_SECONDS) -> str | None:
    """Why no TCP connection opens to the W&B server within ``timeout`` seconds, or None.

    Example:
        >>> with socket.socket() as s:  # a port nobody listens on
        ...     s.bind(("127.0.0.1", 0))
        ...     port = s.getsockname()[1]
        >>> server_unreachable(f"http://127.0.0.1:{port}")
        'Connection refused'
    """
    url = urlsplit(base_url or os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer in {timeout:g} s"
    except OSError as error:
        return error.strerror or type(error).__name__


def not_writable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (made if missing), or None.

    Example:
        >>> not_writable(Path(tempfile.mkdtemp())) is None
        True
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def home_environment(directory: Path) -> dict[str, str]:
    """Environment that keeps W&B out of an unset or read-only ``HOME`` (empty if HOME is
    fine or the user set W&B's folders), its folders under ``directory``.

    Example:
        >>> home_environment(Path("/w")) if not os.environ.get("HOME") else {}
        ... # doctest: +ELLIPSIS
        {...}
    """
    home = os.environ.get("HOME")
    if home and os.access(home, os.W_OK):
        return {}
    base = directory / ".home"
    wanted = {
        "WANDB_CONFIG_DIR": base / "config",
        "WANDB_CACHE_DIR": base / "cache",
        "WANDB_DATA_DIR": base / "data",
        "XDG_CACHE_HOME": base / "xdg-cache",  # wandb-core's own log
        "XDG_CONFIG_HOME": base / "xdg-config",
    }
    return {key: str(path) for key, path in wanted.items() if not os.environ.get(key)}
