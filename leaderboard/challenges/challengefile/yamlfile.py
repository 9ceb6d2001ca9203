"""Reading a challenge file: YAML to plain data with the line of every key and item, and the errors' one shape.

Dates stay strings here (YAML's own timestamp type would turn `2025-09-01` into a naive date and drop
what the schema must refuse), and a key given twice in one mapping is an error, not "the last one wins".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type (dates are checked by the schema, as text)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Dumper(yaml.SafeDumper):
    """The writing side of _Loader: a date string is written bare, as the file's author would."""


Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # Markdown keeps its lines
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _text)


@dataclass(frozen=True)
class SpecError:
    """One problem in a challenge file, where it is."""

    path: str  # phases[1].closes
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '(the file)'}: {self.message}"


class SpecErrors(Exception):
    """Every problem found in a challenge file (never only the first)."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def path_text(path: Path) -> str:
    """("phases", 1, "closes") -> "phases[1].closes"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class Document:
    """A parsed challenge file: its data and the line of each path in it."""

    data: Any
    lines: dict[Path, int]

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of the nearest enclosing item the file has (a missing key: its mapping)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def error(self, path: Path, message: str) -> SpecError:
        return SpecError(path_text(path), self.line(path), message)


def read_yaml(text: str) -> Document:
    """The file's data and lines; SpecErrors for YAML that does not parse or repeats a key."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecErrors([SpecError("", mark.line + 1 if mark else None,
                                    f"this is not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise SpecErrors([SpecError("", None, f"this is not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    errors: list[SpecError] = []
    data = None if node is None else _build(loader, node, (), lines, errors)
    if errors:
        raise SpecErrors(errors)
    return Document(data, lines)


def _build(loader: _Loader, node: yaml.Node, path: Path, lines: dict[Path, int], errors: list[SpecError]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<) as SafeLoader would
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                errors.append(SpecError(path_text(path), key_node.start_mark.line + 1, "a key must be a name"))
                continue
            key = str(key)
            if key in mapping:
                errors.append(SpecError(path_text((*path, key)), key_node.start_mark.line + 1,
                                        f"{key!r} is given twice (line {lines[(*path, key)]} and here)"))
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            mapping[key] = _build(loader, value_node, (*path, key), lines, errors)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, index), lines, errors) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
