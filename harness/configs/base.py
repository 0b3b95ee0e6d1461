"""What every config kind shares: the strict base model, the version, one-line validation
errors, ``--set`` overrides and reading a YAML file into a mapping.

Precedence, for every kind: the algorithm's defaults < the YAML file < ``--set key=value``
overrides. Dotted keys reach into nested fields (``--set sampler.type=random``,
``--set params.epochs=50``).

Example:
    >>> validate_model(StrictModel, {"x": 1}, "my.yaml")
    Traceback (most recent call last):
    ...
    ValueError: my.yaml: x: unknown key
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from harness.configs.safe_yaml import read_yaml_file

CONFIG_VERSION = 1


class StrictModel(BaseModel):
    """The base of every config model: unknown keys refused, frozen, and ``true``/``false``
    or a quoted ``"5"`` refused where a number is expected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _only_numbers_for_numbers(cls, data: Any) -> Any:
        """pydantic reads ``true`` as 1 for an int or float field (``n_trials: true`` ran
        one trial) and ``"5"`` as 5 (``n_trials: "5"`` was taken while an algorithm's
        ``epochs: "5"`` was refused): both refused, the same way everywhere."""
        for name, value in data.items() if isinstance(data, dict) else ():
            field = cls.model_fields.get(name)
            if field is None:
                continue
            if _numbers_only(field.annotation):
                _refuse_non_number(name, value, "a number")
            listed = get_origin(_bare(field.annotation)) is list and isinstance(value, list)
            if listed and _numbers_only(get_args(_bare(field.annotation))[0]):
                for item in value:
                    _refuse_non_number(name, item, "numbers")
        return data


def _refuse_non_number(name: str, value: Any, expected: str) -> None:
    """A ValueError for a boolean or a string given where ``expected`` (numbers) go.

    Example:
        >>> _refuse_non_number("n_trials", "5", "a number")
        Traceback (most recent call last):
        ...
        ValueError: n_trials: a number, not the string '5' (write 5 without quotes)
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: {expected}, not {str(value).lower()}")
    if isinstance(value, str) and _is_number(value):  # other strings: pydantic's message
        raise ValueError(
            f"{name}: {expected}, not the string {value!r} (write {value} without quotes)"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _bare(annotation: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T``; anything else as it is."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _numbers_only(annotation: Any) -> bool:
    """``int``, ``float``, or a union of them with ``None``."""
    annotation = _bare(annotation)
    if get_origin(annotation) is list:
        return False
    kinds = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    return all(kind in (int, float) for kind in kinds)


def one_name_is_a_list(value: Any) -> Any:
    """``"tracr-reverse"`` is read as ``["tracr-reverse"]``; anything else as it is."""
    return [value] if isinstance(value, str) else value


def no_repeats(values: list[Any]) -> list[Any]:
    """``values`` unchanged; a ValueError naming the first value given twice.

    Example:
        >>> no_repeats([0, 1, 0])
        Traceback (most recent call last):
        ...
        ValueError: 0 is given twice
    """
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is given twice")
        seen.add(value)
    return values


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_NAME_LENGTH = 100
"""A study's name is a folder (``runs/<name>/``), a file name's stem (``<name>.journal``,
``<name>-search``) and a W&B group: a file name's 255 bytes minus those suffixes, with room."""

ConfigName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)]
"""The name of a study, comparison or transfer config (see :data:`MAX_NAME_LENGTH`)."""

TaskNames = Annotated[list[str], BeforeValidator(one_name_is_a_list)]
"""Task names (and named suites) of a comparison or transfer config; one name may stand
alone."""

DistinctSeeds = Annotated[list[int], AfterValidator(no_repeats)]
"""Seeds of a comparison or transfer config: a repeated seed would count one run twice."""


def validate_model(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    """Validate ``data`` as ``model``; a one-line ValueError naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        parts = [str(p) for p in first["loc"]]
        where = ".".join(p for p in parts if not re.fullmatch(_UNION_TAGS, p))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ValueError(
            f"{source}: {where}: {message}" if where else f"{source}: {message}"
        ) from None


_UNION_TAGS = r"[a-z]+\[.*\]|float|int|categorical"


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key`` ``"a.b.c"`` (a ``--set`` override).

    Example:
        >>> data = {"sampler": {"type": "tpe"}}
        >>> set_dotted(data, "sampler.type", "random")
        >>> data
        {'sampler': {'type': 'random'}}
    """
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {key}: {part!r} is not a mapping")
        node = child
    node[parts[-1]] = value


def read_mapping(path: Path | str, what: str, overrides: dict[str, Any] | None = None) -> dict:
    """The YAML file at ``path`` as a mapping, with ``--set`` overrides applied.

    Args:
        what: What the file should be, for messages (``"study config"``).

    Raises:
        ValueError: One line: the file does not exist, is not valid YAML, or is not a
            mapping; an override reaches into a non-mapping.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    data = read_yaml_file(path) or {}  # refuses what is not a regular file
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {what} is a mapping of keys, got {type(data).__name__}")
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return data
