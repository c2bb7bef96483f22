"""The ``webhooks`` section of the settings tree: endpoints, retries, the URL guard.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import attrs

from .._secrets import webhook_secret_problem
from ._base import _fail, _need, _number

__all__ = [
    "WebhookEndpoint",
    "WebhookSettings",
]


# --------------------------------------------------------------------------- 7. webhooks


@attrs.frozen
class WebhookEndpoint:
    """A webhook endpoint: URL, subscribed event types (``*`` for all), secrets, batching.

    ``secrets``: ``whsec_...`` strings; several during a rotation (each request carries one
    signature per secret). ``batch_max`` > 1 sends up to that many events of one type in one
    request, waiting at most ``batch_interval_s``.
    """

    id: str = attrs.field(metadata={"doc": "The endpoint's unique id."})
    url: str = attrs.field(metadata={"doc": "Where events are POSTed (checked by the URL guard)."})
    event_types: tuple[str, ...] = attrs.field(
        default=("*",), metadata={"doc": "Event types this endpoint receives; '*' for all."}
    )
    enabled: bool = attrs.field(default=True, metadata={"doc": "Deliver to this endpoint at all."})
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    batch_max: int = 1
    batch_interval_s: float = 1.0
    max_concurrency: int = attrs.field(
        default=4, metadata={"doc": "Requests in flight to this endpoint at once."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(bool(self.id), f"{path}.id", "must be a non-empty string")
        _need(
            self.url.startswith(("http://", "https://")),
            f"{path}.url",
            "must be an http(s) URL",
        )
        _need(bool(self.event_types), f"{path}.event_types", "subscribe to at least one type")
        for i, secret in enumerate(self.secrets):
            problem = webhook_secret_problem(secret)
            if problem is not None:
                raise _fail(f"{path}.secrets[{i}]", f"{problem} (the value is not shown)")
        _number(self.batch_max, f"{path}.batch_max", lo=1, hi=100, integer=True)
        _number(self.batch_interval_s, f"{path}.batch_interval_s", above=True, hi=3600)
        _number(self.max_concurrency, f"{path}.max_concurrency", lo=1, hi=1000, integer=True)


_STANDARD_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


@attrs.frozen
class WebhookSettings:
    """Message webhooks: endpoints, retry schedule, disabling, URL guard.

    ``retry_schedule_s``: delay before each attempt (the Standard Webhooks schedule by default),
    each with up to ``jitter`` (a fraction) of random jitter. ``disable_after_s``: an endpoint
    failing for this long is disabled. ``allow_hosts``: hosts or networks the URL guard lets
    through even when private (tests, on-premise); ``allow_http``: accept plain http URLs.
    """

    endpoints: tuple[WebhookEndpoint, ...] = ()
    retry_schedule_s: tuple[float, ...] = _STANDARD_SCHEDULE
    jitter: float = 0.1
    timeout_s: float = attrs.field(
        default=15.0, metadata={"doc": "Timeout of one delivery attempt."}
    )
    min_retry_after_error_s: float = attrs.field(
        default=60.0, metadata={"doc": "At least this long before retrying after a timeout or 429."}
    )
    disable_after_s: float = 5 * 24 * 3600.0
    allow_hosts: tuple[str, ...] = ()
    allow_http: bool = False

    def __attrs_post_init__(self) -> None:
        p = "webhooks"
        ids: set[str] = set()
        for i, ep in enumerate(self.endpoints):
            ep.check(f"{p}.endpoints[{i}]")
            _need(ep.id not in ids, f"{p}.endpoints[{i}].id", f"duplicate endpoint id {ep.id!r}")
            ids.add(ep.id)
        _need(bool(self.retry_schedule_s), f"{p}.retry_schedule_s", "needs at least one attempt")
        _need(len(self.retry_schedule_s) <= 100, f"{p}.retry_schedule_s", "at most 100 attempts")
        for i, delay in enumerate(self.retry_schedule_s):
            _number(delay, f"{p}.retry_schedule_s[{i}]")
        _number(self.jitter, f"{p}.jitter", hi=1)
        _number(self.timeout_s, f"{p}.timeout_s", above=True, hi=120)
        _number(self.min_retry_after_error_s, f"{p}.min_retry_after_error_s")
        _number(self.disable_after_s, f"{p}.disable_after_s", above=True)
