"""The compose interpolation the compose checks rest on, against compose's documented rules."""

from __future__ import annotations

import pytest

from tests.deploy.interpolation import (
    InterpolationError,
    MissingVariable,
    interpolate,
    variables_used,
)

ENV = {"SET": "value", "EMPTY": "", "OTHER": "other"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("$SET/x and ${SET}y", "value/x and valuey"),
        ("${UNSET}", ""),
        ("$UNSET", ""),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("a$$b", "a$b"),
        ("${SET:-d}", "value"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-${OTHER}}", "other"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a:b/c}", "a:b/c"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?needed}", "value"),
        ("${EMPTY?needed}", ""),
        ("redis://:${SET:?x}@redis:6379/0", "redis://:value@redis:6379/0"),
    ],
)
def test_interpolates_as_compose_does(template: str, expected: str) -> None:
    assert interpolate(template, ENV) == expected


@pytest.mark.parametrize("template", ["${UNSET:?set it in .env}", "${EMPTY:?x}", "${UNSET?x}"])
def test_a_required_variable_unset_names_it(template: str) -> None:
    with pytest.raises(MissingVariable) as raised:
        interpolate(template, ENV)
    name = template[2:].split(":")[0].split("?")[0]
    assert raised.value.name == name
    assert str(raised.value).startswith(f"{name}: required variable is not set")


def test_the_message_of_a_required_variable_is_kept() -> None:
    with pytest.raises(MissingVariable, match=r"set REDIS_PASSWORD in \.env"):
        interpolate("${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}", {})


@pytest.mark.parametrize("template", ["${SET", "${}", "${9X}", "$ alone", "cost $5", "${SET!x}"])
def test_a_malformed_template_is_refused(template: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(template, ENV)


def test_variables_used_include_nested_ones_and_skip_escaped_ones() -> None:
    text = "${A:-${B}} $C $${NOT_ME} $$NOR_ME ${D:?msg $E}"
    assert variables_used(text) == {"A", "B", "C", "D", "E"}
