"""What both managers hold: settings, clock, the core (with its RNG, strategies, word filter and
ids) and the host's sinks; the calls of :mod:`._calls` and the methods with no port call."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from .._clock import SystemClock
from .._core import Core
from ..assignment._strategies import Strategy
from ..moderation import SensitiveWordFilter
from ..monitoring import fan_out
from ..ports import Clock, EventSink, MessageSink
from ..settings import ChatSettings
from ._calls import Calls
from ._sinks import Sinks


class _Base(Calls):
    """What both managers share: settings, clock, RNG, sinks and the public method surface."""

    _sinks_type: type[Sinks] = Sinks

    def __init__(
        self,
        settings: ChatSettings | None,
        clock: Clock | None,
        rng: random.Random | None,
        strategies: Mapping[str, Strategy] | None,
        event_sink: EventSink | None,
        message_sink: MessageSink | None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.settings = ChatSettings.coerce(settings)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._core = Core(
            self.settings,
            rng if rng is not None else random.Random(),
            strategies,
            word_filter,
            ids,
        )
        self._sinks = self._sinks_type(event_sink, message_sink)
        self._core.emits = event_sink is not None
        self._core.delivers = message_sink is not None

    def _stores_in(self, storage: object) -> None:
        """The manager's storage is ``storage``: the core counts the census in its units when
        the store reports it."""
        self._core.census_in_unit = getattr(storage, "reports_census", False) is True

    def reload_words(self, word_filter: SensitiveWordFilter) -> None:
        """Swap in a new compiled word filter atomically; messages in flight keep the old one."""
        if self._core.filter is None:
            from ..moderation import FilterHolder

            self._core.filter = FilterHolder(word_filter)
        else:
            self._core.filter.reload(word_filter)

    def _observe(self, sink: EventSink) -> None:
        self._sinks.events = fan_out(self._sinks.events, sink)
        self._core.emits = True
