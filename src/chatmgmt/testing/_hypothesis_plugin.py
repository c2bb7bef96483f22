"""The hypothesis plugin: ``st.from_type`` knows the library's values.

Hypothesis loads it through the ``hypothesis`` entry point declared in ``pyproject.toml``
(``_ = "chatmgmt.testing._hypothesis_plugin:_register"``), so ``st.from_type(Agent)`` works in
any test run where both packages are installed. Nothing here runs unless hypothesis is present.
"""

from __future__ import annotations

__all__: list[str] = []


def _register() -> None:
    """Register strategies for Agent, CustomerInfo, Chat and ChatSettings with hypothesis."""
    from hypothesis import strategies as st

    from ..model import Agent, Chat, CustomerInfo
    from ..settings import ChatSettings
    from . import _strategies

    st.register_type_strategy(Agent, st.deferred(_strategies.agents))
    st.register_type_strategy(CustomerInfo, st.deferred(_strategies.customer_infos))
    st.register_type_strategy(Chat, st.deferred(_strategies.chats))
    st.register_type_strategy(ChatSettings, st.deferred(_strategies.settings))
