"""The hypothesis plugin: ``st.from_type`` knows the library's values.

Hypothesis loads it through the ``hypothesis`` entry point declared in ``pyproject.toml``
(``_ = "chatmgmt.testing._hypothesis_plugin:_register"``), so ``st.from_type(Agent)`` works in
any test run where both packages are installed. Nothing here runs unless hypothesis is present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__: list[str] = []


def _register() -> None:
    """Register strategies for Agent, CustomerInfo, Chat and ChatSettings with hypothesis.

    The strategies module imports hypothesis, which may be what is calling this hook right
    now; so it is imported only when a strategy is first drawn.
    """
    from hypothesis import strategies as st

    from ..model import Agent, Chat, CustomerInfo
    from ..settings import ChatSettings

    def lazy(name: str) -> st.SearchStrategy[Any]:
        def build() -> st.SearchStrategy[Any]:
            from . import _strategies

            factory: Callable[[], st.SearchStrategy[Any]] = getattr(_strategies, name)
            return factory()

        return st.deferred(build)

    st.register_type_strategy(Agent, lazy("agents"))
    st.register_type_strategy(CustomerInfo, lazy("customer_infos"))
    st.register_type_strategy(Chat, lazy("chats"))
    st.register_type_strategy(ChatSettings, lazy("settings"))
