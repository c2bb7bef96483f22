"""The dispatcher's logic as pure functions: no I/O, no clock, no global randomness.

The dispatcher core (:mod:`chatmgmt.delivery`) calls these; its sync and async drivers only add
the I/O around them:

* :func:`serialize` / :func:`batch_body` — the body, serialized once (compact JSON, sorted keys);
* :func:`fan_out` — which endpoints get an outbox entry, as deliveries or batch-buffer entries;
* :func:`plan_batches` — which buffered events to seal into one request now;
* :func:`build_request` — the signed request for one attempt (fresh timestamp, same bytes);
* :func:`classify` — what a response (or a transport error) means;
* :func:`decide` — the delivery's next state: delivered, retry at a time, or dead;
* :func:`retry_after` — parse ``Retry-After`` (seconds or an HTTP date).
"""

from __future__ import annotations

import email.utils
import enum
import hashlib
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import DeliveryError, UnsafeURLError
from ..model import Event
from ..ports import (
    RESPONSE_KEEP,
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    HttpRequest,
    HttpResponse,
    OutboxEntry,
)
from ..settings import WebhookEndpoint, WebhookSettings
from ._catalogue import EventType, make_event
from ._signing import Signer
from ._url_policy import UrlPolicy

__all__ = [
    "Decision",
    "Outcome",
    "OutcomeKind",
    "batch_body",
    "batch_id",
    "build_request",
    "classify",
    "decide",
    "disabled_event",
    "fan_out",
    "plan_batches",
    "refused_endpoints",
    "retry_after",
    "serialize",
    "serialize_or_reason",
    "subscribed",
]

USER_AGENT = "chatmgmt-webhooks/0.1"
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def serialize(event: Event) -> bytes:
    """The event's envelope as compact JSON (sorted keys, UTF-8): the bytes that get signed."""
    return _ENCODER.encode(event.envelope()).encode("utf-8")


def batch_id(event_ids: Sequence[str]) -> str:
    """A stable ``webhook-id`` for a batch: derived from its events' ids, in order."""
    digest = hashlib.sha256("\n".join(event_ids).encode("utf-8")).hexdigest()
    return f"batch_{digest[:32]}"


def batch_body(msg_id: str, events: Sequence[Event]) -> bytes:
    """The body of a batch: ``{"id", "type", "timestamp", "batch": true, "data": {"events"}}``.

    ``timestamp`` is the first event's; ``data.events`` holds each event's full envelope.
    """
    first = events[0].envelope()
    envelope: dict[str, Any] = {
        "id": msg_id,
        "type": first["type"],
        "timestamp": first["timestamp"],
        "batch": True,
        "data": {"events": [e.envelope() for e in events]},
    }
    return _ENCODER.encode(envelope).encode("utf-8")


def subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """Does ``endpoint`` (enabled) receive ``event_type``? ``*`` matches every type and
    ``prefix.*`` every type under that prefix."""
    if not endpoint.enabled:
        return False
    for pattern in endpoint.event_types:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _chat_keys(events: Iterable[Event]) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    for e in events:
        if e.chat_id is not None:
            keys[e.chat_id] = None
    return tuple(keys)


@attrs.frozen
class FanOut:
    """What to record for a set of outbox entries: deliveries and batch-buffer entries."""

    deliveries: tuple[Delivery, ...]
    buffered: tuple[BufferedEvent, ...]


def serialize_or_reason(event: Event) -> tuple[bytes, str]:
    """The event's body, or ``b""`` and why it cannot be serialized (e.g. a lone surrogate in
    a text, or a value JSON has no form for)."""
    try:
        return serialize(event), ""
    except (UnicodeError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        return b"", f"cannot serialize the event: {type(exc).__name__}: {exc}"


def refused_endpoints(settings: WebhookSettings) -> dict[str, str]:
    """Endpoints whose URL can never be delivered to under the settings' URL policy (its form,
    or an IP literal that is not allowed), with the reason."""
    policy = UrlPolicy.from_settings(settings)
    out: dict[str, str] = {}
    for ep in settings.endpoints:
        why = policy.refusal(ep.url)
        if why is not None:
            out[ep.id] = f"endpoint URL refused: {why}"
    return out


def fan_out(
    entries: Sequence[OutboxEntry],
    settings: WebhookSettings,
    now: float,
    disabled: frozenset[str] = frozenset(),
) -> FanOut:
    """Turn outbox entries into deliveries for every subscribed endpoint.

    An endpoint with ``batch_max > 1`` gets batch-buffer entries instead (sealed later by
    :func:`plan_batches`). What can never be delivered becomes a dead letter at once, with the
    reason, so one poison event or endpoint never holds up the others: an endpoint in
    ``disabled`` (disabled for failing or 410: replay after enabling it), an event that cannot
    be serialized, an endpoint whose URL the URL policy refuses (:func:`refused_endpoints`).
    """
    refused = refused_endpoints(settings)
    deliveries: list[Delivery] = []
    buffered: list[BufferedEvent] = []
    for entry in entries:
        event = entry.event
        serialized: tuple[bytes, str] | None = None
        for ep in settings.endpoints:
            if not subscribed(ep, event.type):
                continue
            if serialized is None:
                serialized = serialize_or_reason(event)
            body, reason = serialized
            if not reason:
                if ep.id in disabled:
                    reason = "endpoint disabled"
                elif ep.id in refused:
                    reason = refused[ep.id]
            if ep.batch_max > 1 and not reason:
                buffered.append(BufferedEvent(ep.id, event, now))
                continue
            deliveries.append(
                Delivery(
                    id=event.id,
                    endpoint_id=ep.id,
                    event_type=event.type,
                    event_ids=(event.id,),
                    chat_keys=_chat_keys((event,)),
                    body=body,
                    created_at=now,
                    next_attempt_at=now,
                    status=DeliveryStatus.DEAD if reason else DeliveryStatus.PENDING,
                    dead_reason=reason,
                    finished_at=now if reason else None,
                )
            )
    return FanOut(tuple(deliveries), tuple(buffered))


def plan_batches(
    endpoint: WebhookEndpoint, buffered: Sequence[BufferedEvent], now: float, *, flush: bool = False
) -> list[Delivery]:
    """Which buffered events to send now, as batch deliveries (each: one type, in order).

    Up to ``batch_max`` events of one type per request; fewer once the oldest of them has
    waited ``batch_interval_s`` (or when ``flush``). Each returned delivery's ``event_ids``
    are the buffer entries to seal into it.
    """
    by_type: dict[str, list[BufferedEvent]] = {}
    for b in buffered:
        by_type.setdefault(b.event.type, []).append(b)
    out: list[Delivery] = []
    for event_type, items in by_type.items():
        size = max(1, endpoint.batch_max)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for chunk in chunks:
            full = len(chunk) >= size
            old = chunk[0].buffered_at + endpoint.batch_interval_s <= now
            if not (full or old or flush):
                continue
            events = [b.event for b in chunk]
            ids = tuple(e.id for e in events)
            msg_id = batch_id(ids)
            out.append(
                Delivery(
                    id=msg_id,
                    endpoint_id=endpoint.id,
                    event_type=event_type,
                    event_ids=ids,
                    chat_keys=_chat_keys(events),
                    body=batch_body(msg_id, events),
                    created_at=now,
                    next_attempt_at=now,
                )
            )
    return out


def build_request(
    delivery: Delivery, endpoint: WebhookEndpoint, signer: Signer, now: float, timeout_s: float
) -> HttpRequest:
    """The request for one attempt: the stored body, signed with a fresh timestamp."""
    headers = signer.headers(delivery.id, delivery.body, int(now))
    headers["content-type"] = "application/json"
    headers["user-agent"] = USER_AGENT
    return HttpRequest(endpoint.url, delivery.body, headers, timeout_s)


class OutcomeKind(str, enum.Enum):
    """What an attempt's result means."""

    SUCCESS = "success"
    RETRY = "retry"
    GIVE_UP = "give_up"
    GONE = "gone"


@attrs.frozen
class Outcome:
    """An attempt's result classified: kind, the earliest retry it allows, the logged attempt."""

    kind: OutcomeKind
    attempt: Attempt
    not_before_s: float = 0.0


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds from ``now`` that ``Retry-After`` asks to wait (delta-seconds or an HTTP date);
    None when absent or unparsable."""
    value = None
    for k, v in headers.items():
        if k.lower() == "retry-after":
            value = v.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def classify(
    result: HttpResponse | BaseException,
    now: float,
    settings: WebhookSettings,
    *,
    latency_s: float = 0.0,
    retry_4xx: bool = False,
) -> Outcome:
    """Classify one attempt's result (the response, or the transport's exception).

    Only 2xx is success. 410 Gone disables the endpoint. Other 4xx (except 408, 409, 425 and
    429) give up at once unless ``retry_4xx``: the same bytes would get the same answer; the
    delivery becomes a dead letter to replay once the receiver is fixed. 3xx (redirects are
    never followed), 5xx, 408/409/425/429 and transport errors retry; a URL the guard refused
    at connect time (:class:`~chatmgmt.errors.UnsafeURLError`) gives up at once. A timeout or a
    429 waits at least ``min_retry_after_error_s``; a ``Retry-After`` header is honoured.
    """
    if isinstance(result, BaseException):
        timeout = isinstance(result, TimeoutError)
        if isinstance(result, UnsafeURLError):  # the same URL would be refused again
            attempt = Attempt(now, None, latency_s, b"", f"unsafe URL: {result}")
            return Outcome(OutcomeKind.GIVE_UP, attempt)
        if timeout:
            error = f"timeout: {result}"
        elif isinstance(result, DeliveryError):
            error = str(result)
        else:
            error = f"{type(result).__name__}: {result}"
        attempt = Attempt(now, None, latency_s, b"", error)
        floor = settings.min_retry_after_error_s if timeout else 0.0
        return Outcome(OutcomeKind.RETRY, attempt, floor)
    status = result.status
    attempt = Attempt(now, status, result.elapsed_s or latency_s, result.body[:RESPONSE_KEEP])
    if 200 <= status < 300:
        return Outcome(OutcomeKind.SUCCESS, attempt)
    if status == 410:
        return Outcome(OutcomeKind.GONE, attempt)
    floor = settings.min_retry_after_error_s if status == 429 else 0.0
    asked = retry_after(result.headers, now)
    if asked is not None:
        floor = max(floor, asked)
    if 400 <= status < 500 and status not in _RETRYABLE_4XX and not retry_4xx:
        return Outcome(OutcomeKind.GIVE_UP, attempt)
    return Outcome(OutcomeKind.RETRY, attempt, floor)


@attrs.frozen
class Decision:
    """A delivery's next state after an attempt, and whether to disable its endpoint."""

    status: DeliveryStatus
    next_attempt_at: float
    reason: str = ""
    disable: str = ""


def retry_delay(attempts_made: int, settings: WebhookSettings, rng: random.Random) -> float | None:
    """Delay before the next attempt after ``attempts_made`` in this round; None: no more.

    ``retry_schedule_s[i]`` is the delay before attempt ``i``; each gets a random jitter of up
    to ``jitter`` (a fraction) either way.
    """
    schedule = settings.retry_schedule_s
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made]
    return max(0.0, base * (1.0 + settings.jitter * (2.0 * rng.random() - 1.0)))


def decide(
    delivery: Delivery,
    outcome: Outcome,
    settings: WebhookSettings,
    now: float,
    rng: random.Random,
) -> Decision:
    """The delivery's next state after ``outcome`` (``delivery`` as it was before it)."""
    if outcome.kind is OutcomeKind.SUCCESS:
        return Decision(DeliveryStatus.DELIVERED, now)
    if outcome.kind is OutcomeKind.GONE:
        return Decision(DeliveryStatus.DEAD, now, "410 Gone", disable="gone")
    if outcome.kind is OutcomeKind.GIVE_UP:
        if outcome.attempt.status is None:
            return Decision(DeliveryStatus.DEAD, now, outcome.attempt.error)
        return Decision(DeliveryStatus.DEAD, now, f"HTTP {outcome.attempt.status}: not retried")
    delay = retry_delay(delivery.round_attempts + 1, settings, rng)
    if delay is None:
        n = delivery.round_attempts + 1
        return Decision(DeliveryStatus.DEAD, now, f"gave up after {n} attempts")
    cap = max(max(settings.retry_schedule_s), settings.min_retry_after_error_s)
    delay = max(delay, min(outcome.not_before_s, cap))
    return Decision(DeliveryStatus.PENDING, now + delay)


def should_disable(failing_since: float | None, now: float, settings: WebhookSettings) -> bool:
    """Has the endpoint been failing for ``disable_after_s``?"""
    return failing_since is not None and now - failing_since >= settings.disable_after_s


def disabled_event(
    endpoint_id: str, reason: str, failing_since: float | None, now: float, rng: random.Random
) -> Event:
    """The ``endpoint.disabled`` event for the outbox."""
    return make_event(
        f"evt_{rng.getrandbits(96):024x}",
        EventType.ENDPOINT_DISABLED,
        now,
        {
            "endpoint_id": endpoint_id,
            "reason": reason,
            "failing_since": failing_since if failing_since is not None else now,
        },
    )


def idle_wait(next_due: Iterable[float], now: float, ceiling: float) -> float:
    """How long a driver may sleep before something is due (never more than ``ceiling``)."""
    soonest = min(next_due, default=math.inf)
    return max(0.0, min(ceiling, soonest - now))
