"""Checks before a study is resumed: same config, and records that belong to it.

``runs/<study>/trials.jsonl`` is keyed by the study's name, but a name can live in several
storages (another ``--storage``, a ``study.db`` deleted and created anew), whose trial
numbers start again at 0. Each study gets an id (a user attribute) when it is created,
and its records directory keeps the id of the study its records came from
(``records.id``); a run whose study and records disagree is refused in one line, so one
file never holds two trials with one number.

A study also keeps the config it was created with (user attribute ``config``). Resuming
with a config that differs in what a trial computes (task, algorithm, parameters, search
space, objective, sampler...) is refused in one line unless the user allows it; the
change is then recorded in the study (``config_changes``). The budget, the time limit,
the description, storage and W&B settings may change freely.
"""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path
from typing import Any

from harness.records.store import RecordWriteError, read_records

RECORDS_ID = "records_id"  # user attribute of the study
ID_FILE = "records.id"  # beside trials.jsonl
FREE_TO_CHANGE = ("n_trials", "timeout", "description", "storage", "wandb")


def config_changes(
    stored: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None = None
) -> list[str]:
    """Dotted keys whose values differ between two config dumps (free keys ignored; a key
    the stored config predates counts only if its value is not its ``defaults`` one).

    Example:
        >>> config_changes({"task": "a", "n_trials": 3, "params": {"x": 1}},
        ...                {"task": "b", "n_trials": 9, "params": {"x": 2, "y": 0}})
        ['params.x', 'params.y', 'task']
        >>> config_changes({"s": {"a": 1}}, {"s": {"a": 1, "b": 2}, "n": 1},
        ...                defaults={"n": 1, "s": {"a": 0, "b": 2}})
        []
    """
    defaults = defaults or {}
    changed = []
    for key in sorted(set(stored) | set(current)):
        if key in FREE_TO_CHANGE:
            continue
        if key not in stored and key in defaults and current.get(key) == defaults[key]:
            continue  # a field added to configs since, left at its default
        old, new = stored.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            inner = defaults.get(key) if isinstance(defaults.get(key), dict) else {}
            for k in sorted(set(old) | set(new)):
                added = k not in old and k in inner and new.get(k) == inner[k]
                if old.get(k) != new.get(k) and not added:
                    changed.append(f"{key}.{k}")
        elif old != new:
            changed.append(key)
    return changed


def check_config(study: Any, config: Any, allow_change: bool) -> list[str]:
    """Refuse (ValueError, one line) a config that differs from the stored one, unless
    ``allow_change``: then store it and record the change. Returns the changed keys."""
    stored = study.user_attrs.get("config")
    if stored is None:
        return []
    current = config.model_dump(mode="json", exclude={"storage"})
    changed = config_changes(stored, current, _defaults(config))
    if not changed:
        return []
    if not allow_change:
        first = changed[0]
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise ValueError(
            f"study {config.name!r} was created with another config ({first}: "
            f"{_lookup(stored, first)!r} -> {_lookup(current, first)!r}{more}); "
            "resume it with --allow-config-change to accept the change, or use a new name"
        )
    history = list(study.user_attrs.get("config_changes", []))
    history.append(
        {
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "from_hash": study.user_attrs.get("config_hash"),
            "to_hash": config.config_hash(),
            "keys": changed,
            "previous": stored,
        }
    )
    study.set_user_attr("config_changes", history)
    study.set_user_attr("config", current)
    study.set_user_attr("config_hash", config.config_hash())
    return changed


def _defaults(config: Any) -> dict[str, Any]:
    """The config model's field defaults, as they are dumped to JSON."""
    result = {}
    for name, field in type(config).model_fields.items():
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        result[name] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return result


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def bind_records(study: Any, records_file: Path, shown_storage: str) -> None:
    """Make sure ``records_file`` holds records of this study only (see the module
    docstring); on first use, give the study its id and the directory ``records.id``.

    Raises:
        ValueError: One line, if the records come from another storage of the name.
    """
    id_file = records_file.parent / ID_FILE
    ours = study.user_attrs.get(RECORDS_ID)
    theirs = _read_id(id_file)
    n_records = len(read_records(records_file)) if records_file.exists() else 0
    started = any(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))
    name = study.study_name
    move = f"move {records_file.parent} aside, or use another --runs-dir or study name"
    foreign = theirs is not None if ours is None else theirs != ours
    if n_records and (foreign or (ours is None and not started)):
        if not started:
            raise ValueError(
                f"{records_file} holds {n_records} records of study {name!r}, but "
                f"{shown_storage} has no trials of it (a new or deleted storage?): {move}"
            )
        raise ValueError(
            f"{records_file} holds records of study {name!r} from another storage, not "
            f"{shown_storage}: {move}"
        )
    if ours is None:
        ours = uuid.uuid4().hex
        study.set_user_attr(RECORDS_ID, ours)
        ours = study._storage.get_study_user_attrs(study._study_id)[RECORDS_ID]  # a racer's
    if theirs != ours:
        try:
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(json.dumps({"id": ours, "storage": shown_storage}) + "\n")
        except OSError as error:
            raise RecordWriteError(f"cannot write {id_file}: {error.strerror or error}") from None


def _read_id(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("id")
    except (OSError, ValueError, AttributeError):
        return None
