"""Stored states as JSON: how every frozen dataclass of the core goes into Redis and back.

One codec for every stored shape, read off the dataclasses' own fields and types, so a
field added to a state is stored without touching this module. Encoding is orjson's
native dataclass serialisation (field order, dates as ISO strings, integer keys as
strings, tuples as arrays); frozensets are stored sorted, pydantic models as their JSON
form. Decoding checks every value against its field's type, sets the fields as the
dataclass's own `__init__` would and runs its `__post_init__` checks, then calls the
class's `checked()` when it has one: a value whose constructor stays cheap for the hot
path checks its invariants there. A missing field takes its default; an unknown one is
ignored, so a state written before a field existed still loads. A field declared with
`metadata={"stored": "when set"}` is left out while it holds its default, so a state
that does not use it is stored as the same bytes as before the field existed.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Collection, Mapping
from datetime import date
from functools import cache
from typing import Any, Literal, TypeVar, Union

import orjson
from pydantic import BaseModel

T = TypeVar("T")

_OPTIONS = orjson.OPT_NON_STR_KEYS  # partition-keyed maps: {2: 10} is stored as {"2": 10}


def encode(value: object, omit: Collection[str] = ()) -> bytes:
    """`value` (a dataclass) as JSON, without the fields named in `omit`."""
    unset = [name for name, default in _when_set(type(value)) if getattr(value, name) == default]
    if unset:
        omit = [*omit, *unset]
    if omit:
        fields = dict(vars(value))
        for name in omit:
            del fields[name]
        return orjson.dumps(fields, default=_default, option=_OPTIONS)
    return orjson.dumps(value, default=_default, option=_OPTIONS)


_WHEN_SET: dict[type, tuple[tuple[str, Any], ...]] = {}


def _when_set(kind: type) -> tuple[tuple[str, Any], ...]:
    """The fields of `kind` stored only when not at their default, with the default."""
    found = _WHEN_SET.get(kind)
    if found is None:
        fields = dataclasses.fields(kind) if dataclasses.is_dataclass(kind) else ()
        found = tuple((f.name, f.default) for f in fields if f.metadata.get("stored") == "when set")
        _WHEN_SET[kind] = found
    return found


def decode(kind: type[T], blob: bytes | str, **given: Any) -> T:
    """The `kind` that `encode` stored as `blob`; `given` supplies the fields it omitted.

    ValueError names the type, the field and what was wrong with it.
    """
    try:
        data = orjson.loads(blob)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{kind.__name__} is not stored as JSON: {error}") from None
    return from_data(kind, data, **given)


def from_data(kind: type[T], data: Any, **given: Any) -> T:
    """`decode` for JSON already parsed (a dict as `orjson.loads` gives it)."""
    build = _BUILDERS.get(kind) or _BUILDERS.setdefault(kind, _dataclass(kind))
    value: T = build(data, given)
    return value


def _default(value: Any) -> Any:
    """What orjson cannot serialise by itself."""
    if isinstance(value, frozenset):
        return sorted(value)  # a stable form: the same set is always the same bytes
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store a {type(value).__name__}")


class _Mismatch(Exception):
    """A value that is not what its type needs; `where` grows as it leaves containers."""

    def __init__(self, expected: str, value: object) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.where = ""


# A decoder turns one parsed JSON value into the field's value or raises _Mismatch. Its
# `exact` set names the types it passes through unchanged: a container whose items are
# all of those types is copied in C instead of item by item.
Decoder = Callable[[Any], Any]
_EXACT: dict[Decoder, frozenset[type]] = {}
# What an X | None decoder calls for anything but None (a field's None is exact).
_INNER: dict[Decoder, Decoder] = {}


def _leaf(decoder: Decoder, *exact: type) -> Decoder:
    _EXACT[decoder] = frozenset(exact)
    return decoder


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Mismatch("a string", value)


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    raise _Mismatch("an int", value)


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _Mismatch("a number", value)


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _Mismatch("true or false", value)


def _none(value: Any) -> None:
    if value is None:
        return None
    raise _Mismatch("null", value)


def _date(value: Any) -> date:
    if type(value) is str:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Mismatch("an ISO date", value)


def _any(value: Any) -> Any:
    return value


_LEAVES: dict[Any, Decoder] = {
    str: _leaf(_str, str),
    int: _leaf(_int, int),
    float: _leaf(_float, float),
    bool: _leaf(_bool, bool),
    type(None): _leaf(_none, type(None)),
    date: _date,
    Any: _any,
    object: _any,
}


@cache
def _decoder(hint: Any) -> Decoder:
    """The decoder of one type hint, built once."""
    if hint in _LEAVES:
        return _LEAVES[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return _literal(args)
    if origin is Union or origin is types.UnionType:
        return _optional(args)
    if origin in (dict, Mapping):
        return _mapping(_decoder(args[0]), _decoder(args[1]))
    if origin is frozenset:
        return _collection(frozenset, _decoder(args[0]))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _collection(tuple, _decoder(args[0]))
    if origin is tuple:
        return _fixed_tuple(tuple(_decoder(a) for a in args))
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint.model_validate
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda value: from_data(hint, value)
    raise TypeError(f"no stored form for {hint!r}")


def _literal(allowed: tuple[Any, ...]) -> Decoder:
    expected = "one of " + ", ".join(repr(a) for a in allowed)

    def decode(value: Any) -> Any:
        if value in allowed and type(value) in (str, int, bool):
            return value
        raise _Mismatch(expected, value)

    return decode


def _optional(options: tuple[Any, ...]) -> Decoder:
    present = [o for o in options if o is not type(None)]
    if len(present) != 1 or len(options) != 2:
        raise TypeError(f"only X | None is stored, not {options!r}")
    inner = _decoder(present[0])

    def decode(value: Any) -> Any:
        return None if value is None else inner(value)

    _INNER[decode] = inner
    return _leaf(decode, type(None), *_EXACT.get(inner, ()))


def _mapping(key: Decoder, item: Decoder) -> Decoder:
    if key is not _str and key is not _int:
        raise TypeError("only str and int keys are stored")
    int_keys = key is _int
    exact = _EXACT.get(item, frozenset())

    def decode(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise _Mismatch("a mapping", value)
        found = _int_keyed(value) if int_keys else dict(value)
        if not found or set(map(type, found.values())) <= exact:
            return found
        try:
            return dict(zip(found, map(item, found.values()), strict=True))
        except _Mismatch:
            for raw, element in value.items():  # again, to say where
                _decode_at(f" of {raw}", item, element)
            raise

    return decode


def _int_keyed(value: dict[str, Any]) -> dict[int, Any]:
    # JSON keys are strings: an int key (a partition) is read back from its digits.
    try:
        return {int(key): item for key, item in value.items()}
    except ValueError:
        raise _Mismatch("a mapping with int keys", value) from None


def _collection(build: Callable[[Any], Any], item: Decoder) -> Decoder:
    exact = _EXACT.get(item, frozenset())

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _Mismatch("a list", value)
        if not value or set(map(type, value)) <= exact:
            return build(value)
        try:
            return build(map(item, value))
        except _Mismatch:
            for index, element in enumerate(value):  # again, to say where
                _decode_at(f"[{index}]", item, element)
            raise

    return decode


def _fixed_tuple(items: tuple[Decoder, ...]) -> Decoder:
    size = len(items)

    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != size:
            raise _Mismatch(f"a list of {size}", value)
        try:
            return tuple(map(operator.call, items, value))
        except _Mismatch:
            for index, (item, element) in enumerate(zip(items, value, strict=True)):
                _decode_at(f"[{index}]", item, element)
            raise

    return decode


def _decode_at(where: str, decoder: Decoder, value: Any) -> Any:
    try:
        return decoder(value)
    except _Mismatch as mismatch:
        mismatch.where = where + mismatch.where
        raise


_ABSENT = object()
# Builds one dataclass from its parsed JSON and the fields given apart.
_Builder = Callable[[Any, Mapping[str, Any]], Any]
_BUILDERS: dict[type[Any], _Builder] = {}


def _dataclass(kind: type[Any]) -> _Builder:
    """The builder of a dataclass: each field by its type, then the instance."""
    if not dataclasses.is_dataclass(kind) or "__slots__" in vars(kind):
        raise TypeError(f"{kind!r} is not a dataclass with a __dict__")
    hints = typing.get_type_hints(kind)
    # name, types taken as they are (no call needed), decoder, default, default factory
    fields: list[tuple[str, frozenset[type], Decoder, Any, Callable[[], Any] | None]] = []
    for f in dataclasses.fields(kind):
        if not f.init:
            raise TypeError(f"{kind!r} has a field its __init__ does not take: {f.name}")
        decoder = _decoder(hints[f.name])
        default = _ABSENT if f.default is dataclasses.MISSING else f.default
        factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
        fields.append(
            (
                f.name,
                _EXACT.get(decoder, frozenset()),
                _INNER.get(decoder, decoder),
                default,
                factory,
            )
        )
    names = frozenset(f.name for f in dataclasses.fields(kind))
    post_init = getattr(kind, "__post_init__", None)
    checked: Callable[[Any], Any] | None = getattr(kind, "checked", None)
    name = kind.__name__

    def build(data: Any, given: Mapping[str, Any]) -> Any:
        if type(data) is not dict:
            raise ValueError(f"{name} must be stored as a JSON object, got {data!r}")
        if given and not given.keys() <= names:
            raise TypeError(f"{name} has no field {sorted(given.keys() - names)}")
        # The frozen __init__ would set each field through object.__setattr__, which costs
        # more than all the checks below. The instance is the same, its __dict__ in field
        # order as __init__ leaves it (orjson writes a dataclass in that order).
        value = object.__new__(kind)
        values = value.__dict__
        get = data.get
        field = ""
        try:
            for field, exact, decoder, default, factory in fields:
                raw = get(field, _ABSENT)
                if type(raw) in exact:
                    values[field] = raw
                elif raw is not _ABSENT:
                    values[field] = decoder(raw)
                elif field in given:
                    values[field] = given[field]
                elif factory is not None:
                    values[field] = factory()
                elif default is not _ABSENT:
                    values[field] = default
                else:
                    raise ValueError(f"{name} {field} is missing")
        except _Mismatch as mismatch:
            raise ValueError(
                f"{name} {field}{mismatch.where} must be {mismatch.expected}, "
                f"got {mismatch.value!r}"
            ) from None
        values.update(given)  # in place: the fields keep their order
        if post_init is not None:
            post_init(value)
        return checked(value) if checked is not None else value

    return build
