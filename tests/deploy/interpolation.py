"""Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}...), for the checks."""

from __future__ import annotations

import re
from collections.abc import Mapping

NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
#: The operators compose accepts after a braced name, longest first.
OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A template compose would refuse: malformed, or a required variable unset."""


class MissingVariable(InterpolationError):
    """A `${VAR:?message}` (or `${VAR?message}`) whose variable is unset (or empty)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: required variable is not set ({message or 'no message'})")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` with its variables replaced as compose does; `$$` is a literal `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("$", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        following = text[start + 1 : start + 2]
        if following == "$":
            out.append("$")
            i = start + 2
        elif following == "{":
            end = _closing_brace(text, start + 2)
            out.append(_braced(text[start + 2 : end], env, text))
            i = end + 1
        else:
            name = NAME.match(text, start + 1)
            if name is None:
                raise InterpolationError(f"invalid template {text!r}: a lone '$' (write $$)")
            out.append(env.get(name[0], ""))
            i = name.end()
    return "".join(out)


def variables_used(text: str) -> set[str]:
    """Every variable `text` names, those inside defaults and messages included."""
    return set(re.findall(r"\$\{?([_A-Za-z][_A-Za-z0-9]*)", text.replace("$$", "")))


def _closing_brace(text: str, i: int) -> int:
    # Defaults may hold templates of their own: ${A:-${B}}.
    depth = 1
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid template {text!r}: '${{' is never closed")


def _braced(body: str, env: Mapping[str, str], text: str) -> str:
    name = NAME.match(body)
    if name is None:
        raise InterpolationError(f"invalid template {text!r}: no variable name in ${{{body}}}")
    rest = body[name.end() :]
    value = env.get(name[0])
    if not rest:
        return value or ""
    operator = next((op for op in OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid template {text!r}: unknown operator in ${{{body}}}")
    argument = rest[len(operator) :]
    # With a colon, an empty value counts as unset.
    unset = value is None or (operator.startswith(":") and value == "")
    kind = operator[-1]
    if kind == "-":
        return interpolate(argument, env) if unset else value or ""
    if kind == "?":
        if unset:
            raise MissingVariable(name[0], interpolate(argument, env))
        return value or ""
    return "" if unset else interpolate(argument, env)
