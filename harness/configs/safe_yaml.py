"""Reading YAML that users wrote: duplicate keys refused, alias bombs refused.

PyYAML's ``safe_load`` keeps the last of two equal keys (a typo silently overrides a
setting) and happily builds a "billion laughs" document: a few lines of anchors and
aliases that expand to billions of nodes once anything walks the data (hashing a config
does). :func:`load_yaml` composes the document first, counts the nodes it would expand
to (memoised, so counting itself stays linear) and refuses more than
:data:`MAX_EXPANDED_NODES`, then refuses repeated keys while constructing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.util.user_files import MiB, read_user_file

MAX_CONFIG_BYTES = MiB
"""A config file larger than this is refused unread (a study config is a few KiB)."""

MAX_EXPANDED_NODES = 100_000
"""At most this many nodes once every alias is expanded (a study config has a few
hundred)."""


def load_yaml(text: str, source: str = "YAML") -> Any:
    """Parse ``text``; a one-line ValueError naming ``source`` on any problem.

    Example:
        >>> load_yaml("a: 1\\nb: [x, y]\\nc: 1e-3")
        {'a': 1, 'b': ['x', 'y'], 'c': 0.001}
        >>> load_yaml("a: 1\\na: 2", "s.yaml")
        Traceback (most recent call last):
        ...
        ValueError: s.yaml: duplicate key 'a' at line 2 (first at line 1)
    """
    import yaml

    loader = None
    try:
        loader = _strict_loader()(text)  # refuses unprintable characters (NUL...) at once
        return loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{source}: malformed YAML{where}: {problem}") from None
    except _Refused as error:
        raise ValueError(f"{source}: {error}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ValueError(f"{source}: refused: collections nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: Path, source: str | None = None) -> Any:
    """:func:`load_yaml` of a file; a file that is not UTF-8 text, not a regular file (a FIFO,
    ``/dev/zero``) or larger than :data:`MAX_CONFIG_BYTES` is a one-line ValueError.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "bad.yaml"
        >>> _ = path.write_bytes(b"name: \\xff\\xfe")
        >>> read_yaml_file(path, "bad.yaml")
        Traceback (most recent call last):
        ...
        ValueError: bad.yaml: not UTF-8 text (byte 6)
    """
    source = source or str(path)
    try:
        text = read_user_file(path, "config", MAX_CONFIG_BYTES).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{source}: not UTF-8 text (byte {error.start})") from None
    return load_yaml(text, source)


class _Refused(Exception):
    """A document that parses but is refused (duplicate key, too many nodes)."""


_LOADER = None
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _strict_loader():
    """The loader class, built once on first use (PyYAML is imported lazily)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_document(self):
            node = super().compose_document()
            _check_size(node)
            return node

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                _check_unique_keys(self, node)
            return super().construct_mapping(node, deep=deep)

    # YAML 1.2 reads 1e-3 as a number; PyYAML (YAML 1.1) as the string "1e-3", which a
    # config's number field refuses (strings are not numbers there: see configs.base)
    StrictLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789")
    )
    _LOADER = StrictLoader
    return _LOADER


def _check_size(root) -> None:
    """Refuse a document that expands to more than MAX_EXPANDED_NODES nodes."""
    import yaml

    sizes: dict[int, int] = {}
    # iterative post-order walk: aliases make the node graph a DAG, memoised by id
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_EXPANDED_NODES:
                line = node.start_mark.line + 1
                raise _Refused(
                    f"refused: the node at line {line} expands to more than "
                    f"{MAX_EXPANDED_NODES:,} values through anchors and aliases"
                )
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _check_unique_keys(loader, node) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *base` merges are meant to be overridden
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: PyYAML reports it itself
            continue
        line = key_node.start_mark.line + 1
        if first is not None:
            raise _Refused(f"duplicate key {key!r} at line {line} (first at line {first})")
        seen[key] = line
