"""Config files read: safe YAML with strict keys, validated into the schema models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.errors import ConfigError, describe

_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigLoader(_Base):  # type: ignore[misc]
    """Safe YAML where a key given twice is an error and only true/false are booleans.

    PyYAML keeps the last of two equal keys without a word, and reads ON, NO or Y
    (real ticker symbols) as booleans.
    """

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key_node.value!r} given twice", key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


Model = TypeVar("Model", bound=BaseModel)


def load_config_file(path: Path, model: type[Model], example: str) -> Model:
    """A YAML config file validated as `model`, or ConfigError naming the file and the
    line or field in one line. `example` is a minimal valid document (see load_yaml)."""
    data = load_yaml(path, example)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: {describe(error)}") from None


def load_yaml(path: Path, example: str) -> dict[str, Any]:
    """The mapping at the top of a YAML config file, or ConfigError naming file and line.

    `example` is a minimal valid document, shown when the file is empty or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    try:
        data = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {_yaml_problem(error)}") from None
    if data is None:
        raise ConfigError(f"{path}: empty; expected a YAML mapping such as `{example}`")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{path}: expected a YAML mapping such as `{example}`, got a {kind}")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{' '.join(str(problem).split())}"


def check_unique(keys: Sequence[str], field: str, what: str = "symbol") -> None:
    """ValueError naming the first key that repeats and both places it stands."""
    first: dict[str, int] = {}
    for number, key in enumerate(keys):
        if key in first:
            raise ValueError(
                f"duplicate {what} {key!r} ({field}.{first[key]} and {field}.{number})"
            )
        first[key] = number
