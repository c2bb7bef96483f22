"""The fast path of :mod:`~chatmgmt.storage._codec`: per-class encoders and decoders generated
once, at import, from each model class's attrs fields and their annotations.

Encoding builds the plain dict straight from the attributes (one generated function per class,
no per-field dispatch) and hands it to :mod:`orjson`; decoding takes orjson's dict and fills a
new instance through the class's mutable twin (plain slot stores, as ``model.evolve`` copies),
converting each field by its annotation (enum members from their values, frozensets and tuples
from lists, nested values by their own decoder, missing fields from their defaults). Validators
do not run again on decode: the rows are the library's own output, validated when the values
were built (a row that fails a conversion falls back to the cattrs path, which raises as before).

The fast path only takes what it can write exactly as the reference converter writes it; the
rest raises :class:`NotPlain`, and :mod:`~chatmgmt.storage._codec` uses the reference path:

- a typed float field (or a float in a typed tuple) that is NaN or infinite (orjson would write
  ``null``; the reference writes ``NaN``/``Infinity``, which Python's ``json`` reads back);
- a free-form mapping (``Chat.attributes``, ``Event.data``, ...) holding anything but plain
  JSON values: ``str`` (and its subclasses, such as the model's string enums), ``int`` (and its
  subclasses), ``bool``, ``None``, finite ``float``, and dicts with ``str`` keys, lists and
  tuples of them (a frozenset, a datetime, bytes, a non-str key... go the reference way);
- integers beyond 64 bits and strings with lone surrogates: orjson refuses them itself.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson

from ..model import _twin

__all__ = ["NotPlain", "decoder", "encoder", "plain"]


class NotPlain(Exception):
    """The value holds something only the reference converter writes exactly."""


#: classes whose every instance orjson writes as ``json.dumps`` (after the reference converter)
#: would: the JSON atoms, then each str or int subclass (an enum of such values too) met so far
_SAFE: set[type] = {str, int, bool, type(None)}


def _safe(kind: type) -> bool:
    """Whether ``kind`` belongs in :data:`_SAFE` (added when it does)."""
    if kind in _SAFE:
        return True
    if issubclass(kind, float):
        return False  # a float subclass goes to orjson's ``default``: refused
    if issubclass(kind, enum.Enum):
        # both write a member as its value
        ok = all(type(member.value) in (str, int, bool) for member in kind)
    else:
        ok = issubclass(kind, (str, int))  # written as the str or int it is
    if ok:
        _SAFE.add(kind)
    return ok


def plain(value: Any) -> bool:
    """Whether ``value`` is plain JSON that orjson writes as ``json.dumps`` would (see the
    module's list); a float must be finite. The keys of a dict are not looked at: orjson
    refuses every key that is not exactly a ``str`` (``TypeError``, so the reference path
    writes the value), and writes those it takes as ``json.dumps`` does."""
    # ``type(x)``, not ``x.__class__``: a specialized call where the attribute is not
    kind = type(value)
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        if kind is float:
            return not (value - value)
        return _safe(kind)
    for item in value:
        kind = type(item)
        if kind in _SAFE:
            continue
        if kind is float:
            if item - item:  # NaN - NaN and inf - inf are NaN, which is truthy
                return False
        elif not plain(item):
            return False
    return True


# --------------------------------------------------------------------------- annotations


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"no fast codec for the union {tp!r}")
    return tp, False


def _base(tp: Any) -> Any:
    """A NewType's underlying type (``ChatId`` -> ``str``)."""
    while hasattr(tp, "__supertype__"):
        tp = tp.__supertype__
    return tp


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _bad(value: Any) -> Any:
    raise TypeError(f"unexpected stored value {value!r}")


# --------------------------------------------------------------------------- generation


class _Gen:
    """The source of one class's encoder or decoder, and the names it refers to."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {"NotPlain": NotPlain, "plain": plain, "bad": _bad}
        self.lines: list[str] = []

    def ref(self, value: Any, hint: str) -> str:
        name = f"{hint}_{len(self.scope)}"
        self.scope[name] = value
        return name

    def build(self, name: str) -> Callable[..., Any]:
        exec("\n".join(self.lines), self.scope)
        fn: Callable[..., Any] = self.scope[name]
        return fn


_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {}
_DECODERS: dict[type, Callable[[dict[str, Any]], Any]] = {}


def encoder(cls: type, omit_if_default: frozenset[str] = frozenset()) -> Callable[[Any], Any]:
    """The plain dict of an instance of ``cls`` (raises :class:`NotPlain`); ``omit_if_default``
    names fields written only when they differ from their default. TypeError for a field whose
    annotation the generator does not know."""
    if cls in _ENCODERS:
        return _ENCODERS[cls]
    gen = _Gen()
    hints = _hints(cls)
    body: list[str] = []
    floats: list[str] = []  # float expressions that must be finite
    items: list[str] = []
    optional_items: list[str] = []
    for i, field in enumerate(attrs.fields(cls)):
        x = f"x{i}"
        body.append(f"    {x} = o.{field.name}")
        tp, optional = _strip_optional(hints[field.name])
        expr = _encode_expr(gen, x, _base(tp), floats, body, optional)
        if field.name in omit_if_default:
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            ref = gen.ref(default, "default")
            optional_items.append(f"    if {x} != {ref}:\n        d[{field.name!r}] = {expr}")
        else:
            items.append(f"{field.name!r}: {expr}")
    gen.lines.append("def encode(o):")
    gen.lines.extend(body)
    if floats:
        gen.lines.append(f"    f = {' + '.join(floats)}")
        gen.lines.append("    if f - f:\n        raise NotPlain")
    gen.lines.append("    d = {" + ", ".join(items) + "}")
    gen.lines.extend(optional_items)
    gen.lines.append("    return d")
    fn = gen.build("encode")
    _ENCODERS[cls] = fn
    return fn


def _encode_expr(
    gen: _Gen, x: str, tp: Any, floats: list[str], body: list[str], optional: bool
) -> str:
    """The expression that writes ``x`` (of type ``tp``) in the plain dict."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (str, int, bool):
        return x
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # orjson writes a member by its value, json.dumps a str/int enum's member by the str
        # or int it is: the same text for the model's enums, checked here once
        if not issubclass(tp, (str, int)) or any(
            json.dumps(member) != orjson.dumps(member).decode() for member in tp
        ):
            raise TypeError(f"no fast codec for {tp!r}: orjson writes its members otherwise")
        return x
    if tp is float:
        floats.append(f"(0.0 if {x} is None else {x})" if optional else x)
        return x
    if origin is tuple:
        elements = {_base(a) for a in args if a is not Ellipsis}
        if not elements <= {str, int, float}:
            raise TypeError(f"no fast codec for {tp!r}")
        if float in elements:
            floats.append(f"(0.0 if {x} is None else sum({x}))" if optional else f"sum({x})")
        return x
    if origin is frozenset:
        if _base(args[0]) is not str:
            raise TypeError(f"no fast codec for {tp!r}")
        if optional:
            return f"(None if {x} is None else sorted({x}))"
        return f"(sorted({x}) if {x} else [])"
    if origin is Mapping or origin is dict:
        if _base(args[0]) is not str:
            raise TypeError(f"no fast codec for {tp!r}")
        # every non-empty mapping is checked: its values may be anything at run time
        body.append(f"    if {x} and not plain({x} if type({x}) is dict else dict({x})):")
        body.append("        raise NotPlain")
        return f"({x} if type({x}) is dict or {x} is None else dict({x}))"
    if attrs.has(tp):
        ref = gen.ref(encoder(tp), "enc")
        return f"(None if {x} is None else {ref}({x}))" if optional else f"{ref}({x})"
    raise TypeError(f"no fast codec for {tp!r}")


def decoder(cls: type, omit_if_default: frozenset[str] = frozenset()) -> Callable[..., Any]:
    """The instance of ``cls`` whose plain dict (as JSON gives it back) is ``o``; a missing
    field takes its default (``omit_if_default``: fields the encoder leaves out when they have
    their default). Raises (KeyError, ValueError, TypeError...) on a dict that does not fit;
    TypeError at generation for an annotation the generator does not know."""
    if cls in _DECODERS:
        return _DECODERS[cls]
    names = [a.name for a in attrs.fields(cls)]
    twin = _twin(cls, names)
    if twin is None or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"no fast codec for {cls.__name__}: not a plain slotted class")
    gen = _Gen()
    gen.scope.update(new_=object.__new__, twin=twin, cls=cls, MISSING=object())
    hints = _hints(cls)
    # ``decode`` reads every field the encoder always writes by its key (a row this release
    # wrote has them all); a row without some (written before they existed) goes to
    # ``sparse``, where every missing field gets its default
    full = ["def decode(o):", "    new = new_(twin)", "    try:"]
    sparse = ["def sparse(o):", "    new = new_(twin)"]
    for field in attrs.fields(cls):
        tp, optional = _strip_optional(hints[field.name])
        conv = _decode_expr(gen, "v", _base(tp))
        if optional:
            conv = f"(None if v is None else {conv})"
        if field.default is attrs.NOTHING:
            read = [f"v = o[{field.name!r}]", f"new.{field.name} = {conv}"]
        else:
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                missing = gen.ref(field.default.factory, "factory") + "()"
            else:
                missing = gen.ref(field.default, "default")
            read = [
                f"v = o.get({field.name!r}, MISSING)",
                f"new.{field.name} = {missing} if v is MISSING else {conv}",
            ]
        sparse += [f"    {line}" for line in read]
        if field.name in omit_if_default:
            full += [f"        {line}" for line in read]
        else:
            full += [f"        v = o[{field.name!r}]", f"        new.{field.name} = {conv}"]
    full += ["    except KeyError:", "        return sparse(o)"]
    for lines in (sparse, full):
        gen.lines += [*lines, "    new.__class__ = cls", "    return new"]
    fn = gen.build("decode")
    _DECODERS[cls] = fn
    return fn


def _decode_expr(gen: _Gen, v: str, tp: Any) -> str:
    """The expression that converts the JSON value ``v`` to type ``tp`` (as cattrs does)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (str, int, float, bool):
        return f"{tp.__name__}({v})"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"{gen.ref(tp._value2member_map_, 'members')}[{v}]"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            each = _decode_expr(gen, "e", _base(args[0]))
            return f"tuple([{each} for e in {v}])"
        parts = [_decode_expr(gen, f"{v}[{i}]", _base(a)) for i, a in enumerate(args)]
        return f"(({', '.join(parts)},) if len({v}) == {len(args)} else bad({v}))"
    if origin is frozenset:
        each = _decode_expr(gen, "e", _base(args[0]))
        return f"(frozenset([{each} for e in {v}]) if {v} else {gen.ref(frozenset(), 'empty')})"
    if origin is Mapping or origin is dict:
        key, value = _base(args[0]), _base(args[1])
        if key is not str:
            raise TypeError(f"no fast codec for {tp!r}")
        if value is Any:
            return f"({v} if type({v}) is dict else bad({v}))"
        each = _decode_expr(gen, "i", value)
        copy = f"{{str(k): {each} for k, i in {v}.items()}}"
        return f"({copy} if type({v}) is dict else bad({v}))"
    if attrs.has(tp):
        return f"{gen.ref(decoder(tp), 'dec')}({v})"
    raise TypeError(f"no fast codec for {tp!r}")
