"""One way in for every config kind: the file's ``kind`` picks the model.

A file without ``kind`` (or with one this harness does not know) is a study config, whose
loader then says what is wrong with it in one line.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> text = "kind: compare\\nname: c\\ntasks: tracr-reverse\\nmethods: {eap: {}}\\n"
    >>> _ = path.write_text(text)
    >>> config_kind(path), type(load_any_config(path)).__name__
    ('compare', 'CompareConfig')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.configs.compare import CompareConfig, load_compare_config
from harness.configs.safe_yaml import read_yaml_file
from harness.configs.study import StudyConfig, load_config
from harness.configs.transfer import TransferConfig, load_transfer_config

AnyConfig = StudyConfig | CompareConfig | TransferConfig
"""A config of any kind."""

LOADERS = {"study": load_config, "compare": load_compare_config, "transfer": load_transfer_config}
"""Config kind -> its loader (path, ``--set`` overrides) -> validated config."""


def config_kind(path: Path | str) -> str:
    """``"compare"``, ``"transfer"`` or ``"study"`` (also for an unreadable file: the study
    loader reports the problem)."""
    try:
        data = read_yaml_file(Path(path))
    except (OSError, ValueError):
        return "study"
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) and kind in LOADERS else "study"  # kind: [compare] too


def load_any_config(path: Path | str, overrides: dict[str, Any] | None = None) -> AnyConfig:
    """Read, override and validate the config at ``path`` with the loader of its kind.

    Raises:
        ValueError: One line naming the problem.
    """
    return LOADERS[config_kind(path)](path, overrides)
