"""The command line: ``python -m chatmgmt {demo,simulate,scan,verify-webhook}``.

A bad flag or file prints one clear line on stderr and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

_USAGE = (
    "usage: python -m chatmgmt {demo,simulate,scan,verify-webhook} [options]\n"
    "  demo            a scripted day of a support team on the in-memory default\n"
    "  simulate        compare assignment policies in a discrete-event simulation\n"
    "  scan            print the sensitive words found in texts (--words FILE)\n"
    "  verify-webhook  check the signature of a captured webhook request\n"
)


_DEMO_USAGE = (
    "usage: python -m chatmgmt demo [-h]\n"
    "\n"
    "Run a scripted day of a support team on the in-memory default: agents log in, customers\n"
    "open chats, routing rules, the queue, moderation, transfers, timeouts, satisfaction and\n"
    "signed webhooks, each step printed as it happens. Takes no options.\n"
)


def _demo(argv: list[str]) -> int:
    from ._demo import run_demo

    if argv in (["-h"], ["--help"]):
        print(_DEMO_USAGE, end="")
        return 0
    if argv:
        print(f"chatmgmt demo: unexpected argument {argv[0]!r}", file=sys.stderr)
        return 2
    run_demo()
    return 0


def _simulate(argv: list[str]) -> int:
    from .simulation._cli import simulate_main

    return simulate_main(argv)


def _scan(argv: list[str]) -> int:
    from .moderation._cli import scan_main

    return scan_main(argv)


def _verify(argv: list[str]) -> int:
    from .delivery._cli import verify_webhook_main

    return verify_webhook_main(argv)


_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "demo": _demo,
    "simulate": _simulate,
    "scan": _scan,
    "verify-webhook": _verify,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command = _COMMANDS.get(args[0])
    if command is None:
        print(f"chatmgmt: unknown command {args[0]!r} (try --help)", file=sys.stderr)
        return 2
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
