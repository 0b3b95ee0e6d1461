"""The ``tracr-pypi`` package: the version the project pins and the one installed, read
without importing tracr or JAX.

Example:
    >>> tracr_version() == installed_tracr_version() == PINNED_TRACR_VERSION
    True
"""

from __future__ import annotations

import importlib.metadata

PINNED_TRACR_VERSION = "1.0.0"  # pyproject.toml's pin


def tracr_version() -> str:
    """The installed ``tracr-pypi`` version, read without importing tracr or JAX.

    Example:
        >>> tracr_version()
        '1.0.0'
    """
    version = installed_tracr_version()
    if version is None:
        raise ImportError(
            "the tracr tasks need tracr-pypi to compile their models: "
            f"pip install tracr-pypi=={PINNED_TRACR_VERSION}"
        )
    return version


def installed_tracr_version() -> str | None:
    """The installed ``tracr-pypi`` version, ``None`` where it is not installed."""
    try:
        return importlib.metadata.version("tracr-pypi")
    except importlib.metadata.PackageNotFoundError:
        return None
