"""Where tensors live: one place to turn ``"auto"`` into a torch device."""

from __future__ import annotations

import torch

RUNNABLE = ("cpu", "cuda", "mps")
"""Device types a model runs on (``meta``, ``xla``... are refused)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` means CUDA when present, else the CPU; anything else is passed to torch.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("meta")
        Traceback (most recent call last):
        ...
        ValueError: device 'meta' cannot run a model (use 'auto', 'cpu', 'cuda' or 'cuda:N')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device {device!r} is not a torch device (use 'auto', 'cpu', 'cuda' or 'cuda:N')"
        ) from None
    if resolved.type not in RUNNABLE:  # 'meta' holds shapes, no numbers: every trial failed
        raise ValueError(
            f"device {device!r} cannot run a model (use 'auto', 'cpu', 'cuda' or 'cuda:N')"
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available here")
    return resolved
