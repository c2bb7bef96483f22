"""Standard Webhooks signing: the official vector, interop with `standardwebhooks`, hygiene."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import logging
import random
import time

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmgmt.errors import ValidationError, WebhookVerificationError
from chatmgmt.settings import WebhookEndpoint, WebhookSettings
from chatmgmt.webhook import Signer, _signing, generate_secret, verify

VECTOR_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_official_vector() -> None:
    headers = Signer(VECTOR_KEY).headers(VECTOR_ID, VECTOR_BODY, VECTOR_TS)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": VECTOR_SIG,
    }
    verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS)
    verify(VECTOR_BODY.decode(), headers, [VECTOR_KEY], now=VECTOR_TS + 299)


def test_vector_with_the_reference_package() -> None:
    wh = standardwebhooks.Webhook(VECTOR_KEY)
    when = dt.datetime.fromtimestamp(VECTOR_TS, tz=dt.timezone.utc)
    assert wh.sign(VECTOR_ID, when, VECTOR_BODY.decode()) == VECTOR_SIG


secrets_st = st.binary(min_size=24, max_size=64).map(
    lambda b: "whsec_" + base64.b64encode(b).decode()
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.text(max_size=300).map(str.encode),
    secrets=st.lists(secrets_st, min_size=1, max_size=3),
    msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,30}", fullmatch=True),
)
def test_reference_package_verifies_ours(body: bytes, secrets: list[str], msg_id: str) -> None:
    now = int(time.time())
    headers = Signer(secrets).headers(msg_id, body, now)
    assert len(headers["webhook-signature"].split()) == len(secrets)
    for secret in secrets:  # every secret of a rotation verifies on its own
        standardwebhooks.Webhook(secret).verify(body, headers, json_parse=False)
        verify(body, headers, secret)


@settings(max_examples=100, deadline=None)
@given(body=st.text(max_size=200).map(str.encode), secret=secrets_st)
def test_we_verify_the_reference_package(body: bytes, secret: str) -> None:
    now = int(time.time())
    when = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc)
    sig = standardwebhooks.Webhook(secret).sign("msg_1", when, body.decode())
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(now), "Webhook-Signature": sig}
    verify(body, headers, secret, now=now)
    with pytest.raises(WebhookVerificationError):
        verify(body + b" ", headers, secret, now=now)


def test_rotation_any_secret_matches() -> None:
    old, new = generate_secret(random.Random(1)), generate_secret(random.Random(2))
    headers = Signer([old, new]).headers("m", b"{}", 1000)
    verify(b"{}", headers, new, now=1000)
    verify(b"{}", headers, [generate_secret(random.Random(3)), old], now=1000)
    with pytest.raises(WebhookVerificationError):
        verify(b"{}", headers, generate_secret(random.Random(3)), now=1000)


def _good() -> dict[str, str]:
    return Signer(VECTOR_KEY).headers(VECTOR_ID, VECTOR_BODY, VECTOR_TS)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": ""},
        {"webhook-id": "other"},
        {"webhook-id": "has space"},
        {"webhook-timestamp": "abc"},
        {"webhook-timestamp": "1614265330.5"},
        {"webhook-timestamp": "-1614265330"},
        {"webhook-timestamp": str(VECTOR_TS + 1)},
        {"webhook-signature": ""},
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,"},
        {"webhook-signature": ",abc"},
        {"webhook-signature": "v1,!!!notbase64"},
        {"webhook-signature": "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {"webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {"webhook-signature": "v1,AAAA"},
        {"webhook-signature": " ".join(["v1,AAAA"] * 40)},
    ],
)
def test_any_mismatch_or_malformed_header_raises(change: dict[str, str]) -> None:
    headers = {**_good(), **change}
    with pytest.raises(WebhookVerificationError):
        verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_raises(missing: str) -> None:
    headers = {k: v for k, v in _good().items() if k != missing}
    with pytest.raises(WebhookVerificationError, match=missing):
        verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS)


def test_extra_signatures_and_unknown_versions_are_tolerated() -> None:
    headers = _good()
    headers["webhook-signature"] = "v1a,Zm9v v1,AAAA " + headers["webhook-signature"]
    verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS)


def test_tolerance() -> None:
    headers = _good()
    verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS + 300)
    verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS - 300)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS - 301)
    verify(VECTOR_BODY, headers, VECTOR_KEY, now=VECTOR_TS + 3000, tolerance_s=3600)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_signing.hmac, "compare_digest", spy)
    verify(VECTOR_BODY, _good(), [generate_secret(random.Random(5)), VECTOR_KEY], now=VECTOR_TS)
    # every (secret, signature) pair is compared, with compare_digest, even after a match
    assert len(calls) == 2


def test_bad_secrets_are_refused_without_showing_them() -> None:
    for bad in ["whsec_%%%%not-base64%%%%", "whsec_", ""]:
        with pytest.raises(ValidationError) as info:
            Signer(bad)
        if bad:
            assert bad.removeprefix("whsec_") not in str(info.value) or bad == "whsec_"
    with pytest.raises(ValidationError):
        generate_secret(nbytes=8)


def test_secrets_never_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = generate_secret(random.Random(7))
    key_part = secret.removeprefix("whsec_")
    signer = Signer([secret, VECTOR_KEY])
    texts = [repr(signer), str(signer)]
    ep = WebhookEndpoint(id="e", url="https://example.com/h", secrets=(secret,))
    texts += [repr(ep), repr(WebhookSettings(endpoints=(ep,)))]
    with pytest.raises(WebhookVerificationError) as info:
        verify(b"{}", {**_good(), "webhook-signature": "v1,AAAA"}, secret, now=VECTOR_TS)
    texts.append(str(info.value))
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("chatmgmt").debug("signer %r", signer)
    texts.append(caplog.text)
    for text in texts:
        assert key_part not in text
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in text
    assert repr(signer) == "Signer(<2 secrets>)"


def test_unsigned_without_secrets() -> None:
    headers = Signer([]).headers("m", b"{}", 5)
    assert "webhook-signature" not in headers
    with pytest.raises(WebhookVerificationError):
        verify(b"{}", headers, [], now=5)


def test_generate_secret_shape() -> None:
    s = generate_secret()
    assert s.startswith("whsec_")
    assert len(base64.b64decode(s[6:])) == 32
    assert Signer(s).key_count == 1
