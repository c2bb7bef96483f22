"""``python -m chatmgmt verify-webhook``: check a captured webhook request offline.

::

    chatmgmt verify-webhook --body body.json --headers headers.json --secret-env WEBHOOK_SECRET
    chatmgmt verify-webhook --body body.json -H webhook-id:msg_1 -H webhook-timestamp:1614265330 \\
        -H "webhook-signature:v1,..." --secret-file secret.txt --now 1614265330

Exit status: 0 the signature verifies, 1 it does not (the reason on stderr), 2 bad usage (one
line on stderr). Prefer ``--secret-env`` or ``--secret-file`` to ``--secret``: a secret on the
command line is visible to other users of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import NoReturn

from ..errors import ChatMgmtError, WebhookVerificationError
from ..webhook import verify

__all__ = ["verify_webhook_main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="chatmgmt verify-webhook",
        description="Verify a captured webhook request (Standard Webhooks signature).",
    )
    p.add_argument("--body", required=True, help="file with the raw request body ('-': stdin)")
    p.add_argument("--headers", help="JSON file: an object of headers, or a list of [name, value]")
    p.add_argument(
        "-H", "--header", action="append", default=[], help="one header as name:value (repeatable)"
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--secret", action="append", help="a whsec_ secret (repeatable; avoid: visible)")
    g.add_argument("--secret-env", help="name of an environment variable holding the secret(s)")
    g.add_argument("--secret-file", help="file holding the secret(s), one per line")
    p.add_argument("--tolerance", type=float, default=300.0, help="seconds (default 300)")
    p.add_argument("--now", type=float, help="check the timestamp against this Unix time")
    return p


def _read_headers(args: argparse.Namespace) -> dict[str, str]:
    headers: dict[str, str] = {}
    if args.headers:
        try:
            with open(args.headers, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise _UsageError(f"cannot read --headers file: {exc.strerror or exc}") from None
        except ValueError:
            raise _UsageError("--headers file is not valid JSON") from None
        pairs = data.items() if isinstance(data, dict) else data
        try:
            for name, value in pairs:
                headers[str(name).lower()] = str(value)
        except (TypeError, ValueError):
            raise _UsageError(
                "--headers must be a JSON object or a list of [name, value]"
            ) from None
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise _UsageError(f"-H expects name:value, got {item!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _read_secrets(args: argparse.Namespace) -> list[str]:
    if args.secret:
        raw = "\n".join(args.secret)
    elif args.secret_env:
        value = os.environ.get(args.secret_env)
        if not value:
            raise _UsageError(f"environment variable {args.secret_env} is not set")
        raw = value
    else:
        try:
            with open(args.secret_file, encoding="utf-8") as f:
                raw = f.read()
        except OSError as exc:
            raise _UsageError(f"cannot read --secret-file: {exc.strerror or exc}") from None
    secrets = [s for s in raw.replace(",", " ").split() if s]
    if not secrets:
        raise _UsageError("no secret given")
    return secrets


def verify_webhook_main(argv: list[str]) -> int:
    """Run ``verify-webhook`` with ``argv`` (without the program name); returns the exit code."""
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        try:
            if args.body == "-":
                body = sys.stdin.buffer.read()
            else:
                with open(args.body, "rb") as f:
                    body = f.read()
        except OSError as exc:
            raise _UsageError(f"cannot read --body file: {exc.strerror or exc}") from None
        headers = _read_headers(args)
        secrets = _read_secrets(args)
        try:
            verify(body, headers, secrets, tolerance_s=args.tolerance, now=args.now)
        except WebhookVerificationError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 1
        except ChatMgmtError as exc:  # a malformed secret
            raise _UsageError(str(exc)) from None
    except _UsageError as exc:
        print(f"chatmgmt verify-webhook: error: {exc}", file=sys.stderr)
        return 2
    print(f"valid: webhook-id {headers.get('webhook-id', '')}")
    return 0
