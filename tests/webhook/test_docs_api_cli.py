"""The catalogue page is current; the public API is complete; the verify-webhook CLI."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

import chatmgmt.webhook as wh
from chatmgmt.delivery._cli import verify_webhook_main
from chatmgmt.storage import memory_delivery
from chatmgmt.webhook import CATALOGUE, Signer, render_catalogue_markdown
from chatmgmt.webhook._docs import BEGIN, END, example_envelope, with_catalogue
from webhook.webhook_helpers import SECRET

PAGE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_catalogue_page_is_current() -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section == "\n" + render_catalogue_markdown(), (
        "docs/webhooks.md is stale: run "
        'python -c "import pathlib, chatmgmt.webhook._docs as d; '
        "p = pathlib.Path('docs/webhooks.md'); p.write_text(d.with_catalogue(p.read_text()))\""
    )
    assert with_catalogue(text) == text
    for type_ in CATALOGUE:
        assert f"### `{type_}`" in section


def test_catalogue_covers_the_issue_and_examples_validate() -> None:
    wanted = {
        "chat.started", "chat.queued", "chat.assigned", "chat.transferred", "chat.ended",
        "message.customer", "message.agent", "message.system",
        "offline_message.created", "offline_message.replied",
        "customer.created", "customer.updated",
        "satisfaction.invited", "satisfaction.submitted",
        "moderation.hit", "queue.overflowed", "endpoint.disabled",
    }  # fmt: skip
    assert wanted <= set(CATALOGUE)
    for spec in CATALOGUE.values():
        env = example_envelope(spec)
        assert set(env) == {"id", "type", "timestamp", "schema", "chat_id", "seq", "data"}
        assert set(env["data"]) == set(spec.fields)  # type: ignore[arg-type]
        json.dumps(env)


def test_public_api() -> None:
    names = wh.__all__
    assert len(names) == len(set(names))
    for name in [
        "Signer", "verify", "UrlPolicy", "CheckedUrl", "CATALOGUE", "EventType", "make_event",
        "EventSpec", "serialize", "batch_id",
    ]:  # fmt: skip
        assert name in names
    for name in names:
        obj = getattr(wh, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
    for name in memory_delivery.__all__:
        assert inspect.getdoc(getattr(memory_delivery, name))
    init = ast.parse(Path(wh.__file__).read_text())
    defined = [n.name for n in init.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert defined == ["__getattr__"]  # re-exports, and the names that moved (PEP 562)


def test_moved_names_still_import_from_webhook() -> None:
    """What moved to ``chatmgmt.delivery`` and ``chatmgmt.ports`` keeps working from here."""
    from chatmgmt import delivery, ports

    for name in ["Dispatcher", "AsyncDispatcher", "RunReport", "UrlGuard", "check_url",
                 "UrllibTransport", "HttpxTransport", "AsyncHttpxTransport",
                 "DeliveryTimeoutError"]:  # fmt: skip
        assert getattr(wh, name) is getattr(delivery, name)
        assert name not in wh.__all__
    for name in ["DeliveryStore", "AsyncDeliveryStore", "Delivery", "DeliveryStatus", "Attempt",
                 "BufferedEvent", "EndpointHealth"]:  # fmt: skip
        assert getattr(wh, name) is getattr(ports, name)
    with pytest.raises(AttributeError, match="AiohttpTransport"):
        wh.AsyncStdlibTransport  # noqa: B018
    with pytest.raises(AttributeError):
        wh.NoSuchName  # noqa: B018


@pytest.fixture
def captured(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    body = b'{"id":"evt_1","type":"chat.ended"}'
    headers = Signer(SECRET).headers("evt_1", body, 1_764_000_000)
    (tmp_path / "body.json").write_bytes(body)
    (tmp_path / "headers.json").write_text(json.dumps(headers))
    return tmp_path / "body.json", tmp_path / "headers.json", headers


def test_cli_valid_invalid_usage(
    captured: tuple[Path, Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body, headers, raw = captured
    now = ["--now", "1764000000"]
    base = ["--body", str(body), "--headers", str(headers)]
    assert verify_webhook_main([*base, "--secret", SECRET, *now]) == 0
    monkeypatch.setenv("WH_SECRET", SECRET)
    hs = [x for k, v in raw.items() for x in ("-H", f"{k}:{v}")]
    assert verify_webhook_main(["--body", str(body), *hs, "--secret-env", "WH_SECRET", *now]) == 0
    (tmp_path / "s.txt").write_text("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n" + SECRET + "\n")
    args = [
        "--body",
        str(body),
        "--headers",
        str(headers),
        "--secret-file",
        str(tmp_path / "s.txt"),
    ]
    assert verify_webhook_main([*args, *now]) == 0
    capsys.readouterr()
    # invalid: tampered body, stale timestamp
    (tmp_path / "bad.json").write_bytes(b'{"id":"evt_2"}')
    bad = ["--body", str(tmp_path / "bad.json"), "--headers", str(headers), "--secret", SECRET]
    assert verify_webhook_main([*bad, *now]) == 1
    assert verify_webhook_main([*args, "--now", "1764009999"]) == 1  # stale timestamp
    err = capsys.readouterr().err
    assert err.startswith("invalid:") and SECRET not in err
    # bad usage: one line on stderr
    for argv in (
        [],
        ["--body", str(body)],
        ["--body", "/nonexistent", "--secret", SECRET],
        ["--body", str(body), "-H", "novalue", "--secret", SECRET],
        ["--body", str(body), "--headers", str(body), "--secret", "whsec_%%%"],
        ["--body", str(body), "--secret-env", "NOPE_NOT_SET"],
    ):
        assert verify_webhook_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "%%%" not in err, err
