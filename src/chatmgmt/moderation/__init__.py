"""Sensitive-word moderation: normalize, match every listed word at once, decide.

>>> from chatmgmt.model import MessageRole
>>> f = SensitiveWordFilter(customer=[("fuck", "abuse", "mask")])
>>> v = f.check("what the f.u.c.k", MessageRole.CUSTOMER)
>>> v.action, v.text
(<Action.MASK: 2>, 'what the *******')

See ``docs/moderation.md``.
"""

from ._filter import DEFAULT_BLOCK_PROMPT, FilterHolder, Hit, SensitiveWordFilter, Verdict
from ._matcher import (
    AhoCorasickBackend,
    CompiledMatcher,
    HyperscanBackend,
    MatcherBackend,
)
from ._normalize import Normalization, has_speedups, normalize
from ._wordlist import Action, SensitiveWord, WordList, WordSource

__all__ = [
    "DEFAULT_BLOCK_PROMPT",
    "Action",
    "AhoCorasickBackend",
    "CompiledMatcher",
    "FilterHolder",
    "Hit",
    "HyperscanBackend",
    "MatcherBackend",
    "Normalization",
    "SensitiveWord",
    "SensitiveWordFilter",
    "Verdict",
    "WordList",
    "WordSource",
    "has_speedups",
    "normalize",
]
