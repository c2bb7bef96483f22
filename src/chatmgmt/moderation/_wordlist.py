"""Actions, listed words and word lists (from Python values, settings entries and text files)."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

import attrs

from ..errors import ValidationError

__all__ = ["Action", "SensitiveWord", "WordList", "WordSource"]


class Action(enum.IntEnum):
    """What a hit does, ordered by strength: ``NONE < WARN < MASK < BLOCK``.

    A verdict's action is the strongest of its hits (``max``); ``NONE`` means no hit.
    ``str(action)`` and :attr:`label` give the lower-case name used in settings and events.
    """

    NONE = 0
    """No hit: the message is delivered as it is."""
    WARN = 1
    """Delivered unchanged, flagged to monitoring."""
    MASK = 2
    """Delivered with every matched character replaced by the mask character."""
    BLOCK = 3
    """Not delivered; the sender gets the block prompt."""

    @property
    def label(self) -> str:
        """``"none"``, ``"warn"``, ``"mask"`` or ``"block"``."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, value: str | Action) -> Action:
        """An action from its name (any case) or itself; ``ValidationError`` otherwise."""
        if isinstance(value, Action):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        raise ValidationError(f"unknown action {value!r}: use block, mask or warn")


def _word(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"a listed word must be a non-empty string, got {value!r}")
    if any(c in value for c in "\t\r\n"):
        raise ValidationError(f"a listed word cannot hold a tab or a line break: {value!r}")
    return value.strip()


def _category(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"a category must be a non-empty string, got {value!r}")
    if any(c in value for c in "\t\r\n"):
        raise ValidationError(f"a category cannot hold a tab or a line break: {value!r}")
    return value.strip()


def _action(value: str | Action) -> Action:
    return Action.parse(value)


@attrs.frozen
class SensitiveWord:
    """A listed word with its category (an open string) and its action."""

    word: str = attrs.field(converter=_word)
    category: str = attrs.field(default="default", converter=_category)
    action: Action = attrs.field(default=Action.BLOCK, converter=_action)

    def __attrs_post_init__(self) -> None:
        if self.action is Action.NONE:
            raise ValidationError(f"word {self.word!r}: action must be block, mask or warn")


WordSource = Union[
    "WordList",
    Iterable[Any],
    None,
]
"""What a filter accepts for a list: a :class:`WordList`, or an iterable of words given as
``"word"``, ``(word, category, action)``, ``{"word": ..., "category": ..., "action": ...}``,
:class:`SensitiveWord` or settings ``WordEntry`` values; ``None`` for an empty list."""


def _entry(value: object, default_category: str, default_action: Action) -> SensitiveWord:
    if isinstance(value, SensitiveWord):
        return value
    if isinstance(value, str):
        return SensitiveWord(value, default_category, default_action)
    if isinstance(value, tuple):
        if not 1 <= len(value) <= 3:
            raise ValidationError(f"a word tuple is (word[, category[, action]]), got {value!r}")
        word = value[0]
        category = value[1] if len(value) > 1 else default_category
        action = value[2] if len(value) > 2 else default_action
        return SensitiveWord(word, category, action)
    if isinstance(value, Mapping):
        extra = set(value) - {"word", "category", "action"}
        if extra or "word" not in value:
            raise ValidationError(f"a word mapping has word, category and action keys: {value!r}")
        return SensitiveWord(
            value["word"],
            value.get("category", default_category),
            value.get("action", default_action),
        )
    if hasattr(value, "word") and hasattr(value, "category") and hasattr(value, "action"):
        # chatmgmt.settings.WordEntry and look-alikes
        return SensitiveWord(value.word, value.category, value.action)
    raise ValidationError(f"cannot read a listed word from {value!r}")


@attrs.frozen
class WordList:
    """An immutable list of :class:`SensitiveWord`; iterable, sized, concatenable with ``+``."""

    entries: tuple[SensitiveWord, ...] = ()

    @classmethod
    def of(
        cls,
        values: WordSource,
        *,
        category: str = "default",
        action: str | Action = Action.BLOCK,
    ) -> WordList:
        """A list from Python values (see :data:`WordSource`); bare words get ``category`` and
        ``action``."""
        if values is None:
            return cls()
        if isinstance(values, WordList):
            return values
        if isinstance(values, str):
            raise ValidationError("pass an iterable of words, not a single string")
        act = Action.parse(action)
        return cls(tuple(_entry(v, category, act) for v in values))

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        category: str = "default",
        action: str | Action = Action.BLOCK,
        source: str = "<text>",
    ) -> WordList:
        """A list from text: one word a line, or ``word<TAB>category<TAB>action`` (category and
        action optional); blank lines and lines starting with ``#`` are skipped."""
        act = Action.parse(action)
        entries: list[SensitiveWord] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) > 3:
                raise ValidationError(
                    f"{source}:{lineno}: expected word[<TAB>category[<TAB>action]], "
                    f"got {len(fields)} fields"
                )
            try:
                entries.append(
                    SensitiveWord(
                        fields[0],
                        fields[1] if len(fields) > 1 and fields[1].strip() else category,
                        fields[2] if len(fields) > 2 and fields[2].strip() else act,
                    )
                )
            except ValidationError as exc:
                raise ValidationError(f"{source}:{lineno}: {exc}") from None
        return cls(tuple(entries))

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        category: str = "default",
        action: str | Action = Action.BLOCK,
        encoding: str = "utf-8",
    ) -> WordList:
        """A list from a text file in the :meth:`parse` format (UTF-8 by default; a BOM is
        ignored). ``OSError`` when it cannot be read."""
        with open(path, encoding=encoding) as f:
            text = f.read()
        return cls.parse(text.lstrip("\ufeff"), category=category, action=action, source=str(path))

    @property
    def words(self) -> tuple[str, ...]:
        """The listed words, in order."""
        return tuple(e.word for e in self.entries)

    def __iter__(self) -> Iterator[SensitiveWord]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __add__(self, other: WordList) -> WordList:
        return WordList(self.entries + other.entries)

    def dump(self) -> str:
        """The list in the text-file format; ``WordList.parse(l.dump()) == l``."""
        return "".join(f"{e.word}\t{e.category}\t{e.action.label}\n" for e in self.entries)
