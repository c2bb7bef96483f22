"""``chatmgmt scan``: check text files (or standard input) against a word list."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TextIO

from ..errors import ChatMgmtError
from ..model import MessageRole
from ._filter import SensitiveWordFilter
from ._normalize import Normalization
from ._wordlist import WordList

__all__ = ["scan_main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="chatmgmt scan",
        description="Print every sensitive-word hit in the text files (standard input when none),"
        " one line per hit: SOURCE:LINE:COL-COL<TAB>ACTION<TAB>CATEGORY<TAB>WORD<TAB>MATCHED."
        " Exit status: 0 no hit, 1 hits found, 2 usage or file error.",
    )
    p.add_argument(
        "--words",
        required=True,
        metavar="FILE",
        help="word list: word[<TAB>category<TAB>action] per line",
    )
    p.add_argument("--allow", metavar="FILE", help="allow-list, one entry per line")
    p.add_argument(
        "--role",
        choices=("customer", "agent"),
        default="customer",
        help="whose list the words are and who wrote the text (default: customer)",
    )
    p.add_argument("--t2s", action="store_true", help="fold traditional to simplified Chinese")
    p.add_argument("--collapse", action="store_true", help="collapse repeated characters")
    p.add_argument("files", nargs="*", metavar="TEXTFILE")
    return p


def _scan(flt: SensitiveWordFilter, role: MessageRole, name: str, stream: TextIO) -> int:
    hits = 0
    for lineno, line in enumerate(stream, 1):
        text = line.rstrip("\r\n")
        for h in flt.check(text, role).hits:
            hits += 1
            matched = text[h.start : h.end].replace("\t", " ")
            matched = matched.encode("utf-8", "backslashreplace").decode("utf-8")
            print(
                f"{name}:{lineno}:{h.start + 1}-{h.end}\t{h.action.label}\t{h.category}"
                f"\t{h.word}\t{matched}"
            )
    return hits


def scan_main(argv: list[str]) -> int:
    """Run ``scan`` with ``argv`` (without the command name); return the exit status.

    Prints each hit with its 1-based line and columns into the ORIGINAL line. Exit status 0
    when there is no hit, 1 when there are hits, 2 on a bad flag or an unreadable file (one line
    on standard error).
    """
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(f"chatmgmt scan: {exc}", file=sys.stderr)
        return 2
    role = MessageRole.CUSTOMER if args.role == "customer" else MessageRole.AGENT
    try:
        words = WordList.from_file(args.words)
        allow = WordList.from_file(args.allow).words if args.allow else ()
        norm = Normalization(traditional_to_simplified=args.t2s, collapse_repeats=args.collapse)
        if role is MessageRole.CUSTOMER:
            flt = SensitiveWordFilter(customer=words, allow=allow, normalization=norm)
        else:
            flt = SensitiveWordFilter(agent=words, allow=allow, normalization=norm)
    except (OSError, UnicodeDecodeError, ChatMgmtError) as exc:
        print(f"chatmgmt scan: {_one_line(exc)}", file=sys.stderr)
        return 2
    hits = 0
    try:
        if not args.files:
            hits += _scan(flt, role, "<stdin>", sys.stdin)
        for path in args.files:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                hits += _scan(flt, role, path, f)
    except OSError as exc:
        print(f"chatmgmt scan: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 1 if hits else 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
