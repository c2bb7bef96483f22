"""The settings tree: round-trip, path-precise errors, overrides, and the generated reference."""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chatmgmt._settings_doc import BEGIN_MARKER, END_MARKER, render_settings_markdown
from chatmgmt.errors import SettingsError
from chatmgmt.model import ReceptionMode
from chatmgmt.settings import (
    AssignmentSettings,
    ChatSettings,
    EndOfChatSettings,
    OverflowCondition,
    StrategyName,
    SubmissionSettings,
    UnverifiedIdentity,
    resolve,
)
from chatmgmt.testing._strategies import settings as settings_strategy

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

slow_examples = hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------- round-trip


def _same_types(a: Any, b: Any, path: str = "$") -> None:
    """Equal is not enough: ``"refuse" == UnverifiedIdentity.REFUSE`` for a str enum."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if attrs.has(type(a)):
        for field in attrs.fields(type(a)):
            _same_types(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, Mapping):
        for key in a:
            _same_types(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (tuple, list)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_types(x, y, f"{path}[{i}]")


def test_defaults_work_out_of_the_box_and_round_trip() -> None:
    s = ChatSettings()
    again = ChatSettings.from_dict(s.to_dict())
    assert again == s
    _same_types(again, s)
    assert ChatSettings.from_dict({}) == s


@slow_examples
@given(settings_strategy())
def test_round_trip_property(s: ChatSettings) -> None:
    data = s.to_dict()
    again = ChatSettings.from_dict(data)
    assert again == s
    _same_types(again, s)
    assert again.to_dict() == data


def test_to_dict_is_plain_json_values() -> None:
    import json

    data = ChatSettings().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["reception_mode"] == "real_time"


@pytest.mark.parametrize(
    ("data", "attribute", "expected"),
    [
        ({"reception_mode": "always_on"}, ("reception_mode",), ReceptionMode.ALWAYS_ON),
        ({"assignment": {"strategy": "least_busy"}}, ("assignment", "strategy"), None),
        (
            {"auto_save": {"unverified_identity": "refuse"}},
            ("auto_save", "unverified_identity"),
            None,
        ),
    ],
)
def test_enum_settings_come_back_as_enum_members(
    data: dict[str, Any], attribute: tuple[str, ...], expected: Any
) -> None:
    """A str enum read from a dict must be the member, not a look-alike plain string.

    Code compares them with ``is`` (``mode is ReceptionMode.REAL_TIME``,
    ``unverified_identity is UnverifiedIdentity.REFUSE``); a plain string silently fails it.
    """
    value: Any = ChatSettings.from_dict(data)
    for name in attribute:
        value = getattr(value, name)
    assert isinstance(value, enum.Enum), f"{'.'.join(attribute)} is a {type(value).__name__}"
    if expected is not None:
        assert value is expected


def test_enum_inside_tuples_comes_back_as_members() -> None:
    s = ChatSettings.from_dict(
        {"assignment": {"overflow": [{"target_group": "g", "conditions": ["all_busy"]}]}}
    )
    assert s.assignment.overflow[0].conditions == (OverflowCondition.ALL_BUSY,)
    assert type(s.assignment.overflow[0].conditions[0]) is OverflowCondition


def test_unknown_enum_value_is_a_settings_error() -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"reception_mode": "sometimes"})
    assert info.value.path == "reception_mode"
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"assignment": {"strategy": "fastest"}})
    assert info.value.path == "assignment.strategy"


# --------------------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"end_of_chat": {"channels": {"app": {"warn_after_s": 100, "end_after_s": 50}}}},
            "end_of_chat.channels.app.end_after_s",
        ),
        # the override alone is invalid against the global warn_after_s (300)
        (
            {"end_of_chat": {"channels": {"app": {"end_after_s": 50}}}},
            "end_of_chat.channels.app.end_after_s",
        ),
        # a group override is checked the same way, against the global section
        (
            {"end_of_chat": {"groups": {"vip": {"end_after_s": 50}}}},
            "end_of_chat.groups.vip.end_after_s",
        ),
        ({"end_of_chat": {"groups": {"vip": {"groups": {}}}}}, "end_of_chat.groups.vip.groups"),
        # each alone is valid against the global section, but a vip chat on the app has
        # warn_after_s 500 (the group's) and end_after_s 400 (the channel's)
        (
            {
                "end_of_chat": {
                    "groups": {"vip": {"warn_after_s": 500, "end_after_s": 900}},
                    "channels": {"app": {"end_after_s": 400}},
                }
            },
            "end_of_chat.channels.app.end_after_s",
        ),
        ({"end_of_chat": {"warn_after_s": 600, "end_after_s": 60}}, "end_of_chat.end_after_s"),
        ({"end_of_chat": {"warn_after_s": "soon"}}, "end_of_chat.warn_after_s"),
        ({"end_of_chat": {"warn_after_s": True}}, "end_of_chat.warn_after_s"),
        ({"auto_save": {"enabled": "yes"}}, "auto_save.enabled"),
        ({"assignment": {"queue": {"max_length": 1.5}}}, "assignment.queue.max_length"),
        ({"assignment": {"max_auto_transfers": True}}, "assignment.max_auto_transfers"),
        ({"assignment": {"strategy": 3}}, "assignment.strategy"),
        ({"bogus": 1}, "bogus"),
        ({"end_of_chat": {"bogus": 1}}, "end_of_chat.bogus"),
        ({"assignment": {"queue": {"bogus": 1}}}, "assignment.queue.bogus"),
        ({"assignment": {"routing_rules": [{"name": "vip"}]}}, "assignment.routing_rules[0]"),
        (
            {
                "assignment": {
                    "routing_rules": [
                        {
                            "name": "r",
                            "target_group": "g",
                            "ip_ranges": ["10.0.0.0/8", "300.1.1.1/8"],
                        }
                    ]
                }
            },
            "assignment.routing_rules[0].ip_ranges[1]",
        ),
        (
            {
                "assignment": {
                    "routing_rules": [{"name": "r", "target_group": "g", "min_vip_level": -1}]
                }
            },
            "assignment.routing_rules[0].min_vip_level",
        ),
        ({"assignment": {"overflow": [{"target_group": "g"}] * 5}}, "assignment.overflow"),
        ({"assignment": {"overflow": [{}]}}, "assignment.overflow[0]"),
        (
            {"assignment": {"overflow": [{"target_group": "g", "target_agent": "a"}]}},
            "assignment.overflow[0]",
        ),
        ({"satisfaction": {"scheme": {"levels": 3}}}, "satisfaction.scheme.labels"),
        (
            {"satisfaction": {"scheme": {"levels": 4, "labels": list("abcd")}}},
            "satisfaction.scheme.levels",
        ),
        (
            {"satisfaction": {"groups": {"vip": {"levels": 2, "labels": ["bad"]}}}},
            "satisfaction.groups.vip.labels",
        ),
        ({"satisfaction": {"scheme": {"tags": {"9": ["x"]}}}}, "satisfaction.scheme.tags.9"),
        (
            {"assignment": {"groups": {"sales": {"hours": {"timezone": "Mars/Base"}}}}},
            "assignment.groups.sales.hours.timezone",
        ),
        (
            {"assignment": {"groups": {"sales": {"hours": {"weekly": {"mon": ["09:00-09:00"]}}}}}},
            "assignment.groups.sales.hours.weekly.mon[0]",
        ),
        ({"auto_save": {"channels": [""]}}, "auto_save.channels[0]"),
        (
            {
                "webhooks": {
                    "endpoints": [{"id": "e", "url": "https://a"}, {"id": "e", "url": "https://b"}]
                }
            },
            "webhooks.endpoints[1].id",
        ),
        ({"webhooks": {"endpoints": [{"id": "e", "url": "ftp://a"}]}}, "webhooks.endpoints[0].url"),
        (
            {"sensitive_words": {"customer": [{"word": "x", "action": "zap"}]}},
            "sensitive_words.customer[0].action",
        ),
        ({"sensitive_words": {"mask_char": "**"}}, "sensitive_words.mask_char"),
        ({"submission": {"channels": {"app": {"nope": 3}}}}, "submission.channels.app.nope"),
        ({"submission": {"groups": {"vip": {"channels": {}}}}}, "submission.groups.vip.channels"),
        ({"submission": {"channels": {"app": {"fields": 3}}}}, "submission.channels.app.fields"),
        (
            {"submission": {"fields": [{"name": "topic", "type": "select"}]}},
            "submission.fields[0].options",
        ),
    ],
)
def test_invalid_input_names_the_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.problem


def test_error_message_reads_like_the_issue_example() -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(
            {"end_of_chat": {"channels": {"app": {"warn_after_s": 100, "end_after_s": 50}}}}
        )
    assert str(info.value) == (
        "end_of_chat.channels.app.end_after_s: must be greater than warn_after_s"
    )


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"submission": {"channels": {"app": 5}}}, "submission.channels.app"),
        ({"end_of_chat": {"channels": {"app": "short"}}}, "end_of_chat.channels.app"),
    ],
)
def test_override_that_is_not_a_mapping_uses_a_dotted_path(data: dict[str, Any], path: str) -> None:
    """Paths are dotted like every other path (``a.channels.app``), not ``a.channels['app']``."""
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path


def test_a_string_is_not_a_list_of_channels() -> None:
    """``"web"`` must not be read as the channels ``("w", "e", "b")``."""
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"auto_save": {"channels": "web"}})
    assert info.value.path == "auto_save.channels"


@pytest.mark.parametrize(
    ("data", "secret", "path"),
    [
        (
            {
                "webhooks": {
                    "endpoints": [
                        {"id": "e", "url": "https://x", "secrets": ["hunter2-plaintext-key"]}
                    ]
                }
            },
            "hunter2-plaintext-key",
            "webhooks.endpoints[0].secrets[0]",
        ),
        (
            {
                "webhooks": {
                    "endpoints": [
                        {
                            "id": "e",
                            "url": "https://x",
                            "secrets": ["whsec_goodgoodgood", "whsec_x"],
                        }
                    ]
                }
            },
            "whsec_x",
            "webhooks.endpoints[0].secrets[1]",
        ),
        (
            {"auto_save": {"identity_secret": "tinysecret"}},
            "tinysecret",
            "auto_save.identity_secret",
        ),
    ],
)
def test_bad_secret_is_never_shown(data: dict[str, Any], secret: str, path: str) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path
    for text in (str(info.value), repr(info.value), info.value.problem, " ".join(info.value.args)):
        assert secret not in text


def test_secrets_stay_out_of_reprs() -> None:
    s = ChatSettings.from_dict(
        {
            "auto_save": {"identity_secret": "identity-secret-0123456789"},
            "webhooks": {
                "endpoints": [
                    {"id": "e", "url": "https://x", "secrets": ["whsec_c2VjcmV0c2VjcmV0"]}
                ]
            },
        }
    )
    assert "identity-secret-0123456789" not in repr(s)
    assert "whsec_c2VjcmV0c2VjcmV0" not in repr(s)


def test_from_dict_refuses_a_non_mapping() -> None:
    with pytest.raises(SettingsError):
        ChatSettings.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_settings_error_is_a_value_error_with_a_path() -> None:
    with pytest.raises(ValueError):
        ChatSettings.from_dict({"bogus": 1})


# --------------------------------------------------------------------------- fuzzing

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
)
_junk = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _only_settings_error(data: Any) -> None:
    with contextlib.suppress(SettingsError):
        ChatSettings.from_dict(data)


@hsettings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _junk, max_size=5))
def test_junk_dicts_raise_only_settings_error(data: dict[str, Any]) -> None:
    _only_settings_error(data)


_SECTIONS = [a.name for a in attrs.fields(ChatSettings)]


@hsettings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupting_one_value_of_a_valid_tree_raises_only_settings_error(
    data: st.DataObject,
) -> None:
    """Walk into a valid dict at random and replace one value (or add a key) with junk."""
    tree: Any = ChatSettings().to_dict()
    tree["assignment"]["routing_rules"] = [{"name": "r", "target_group": "g"}]
    tree["assignment"]["groups"] = {"sales": {"hours": {"timezone": "UTC", "weekly": {}}}}
    tree["end_of_chat"]["channels"] = {"app": {"warn_after_s": 10.0, "end_after_s": 20.0}}
    tree["submission"]["groups"] = {"vip": {"prompt": "hi"}}
    node = tree
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(min_value=0, max_value=len(node) - 1))
        else:
            break
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or data.draw(st.booleans()):
            if isinstance(node, dict) and data.draw(st.booleans()):
                node[data.draw(st.text(max_size=6))] = data.draw(_junk)
            else:
                node[key] = data.draw(_junk)
            break
        node = child
    _only_settings_error(tree)


# --------------------------------------------------------------------------- overrides


def test_resolve_precedence_channel_over_group_over_global() -> None:
    section = SubmissionSettings(
        prompt="global",
        when_queue_longer_than=3,
        groups={"sales": {"prompt": "sales", "when_queue_longer_than": 5}},
        channels={"app": {"prompt": "app"}},
    )
    both = resolve(section, channel="app", group="sales")
    assert both.prompt == "app"  # channel beats group
    assert both.when_queue_longer_than == 5  # the group's value where the channel says nothing
    only_group = resolve(section, channel="web", group="sales")
    assert (only_group.prompt, only_group.when_queue_longer_than) == ("sales", 5)
    only_channel = resolve(section, channel="app", group="support")
    assert (only_channel.prompt, only_channel.when_queue_longer_than) == ("app", 3)
    neither = resolve(section, channel="web", group="support")
    assert (neither.prompt, neither.when_queue_longer_than) == ("global", 3)
    assert resolve(section) == section


def test_resolve_converts_override_values_to_their_types() -> None:
    s = ChatSettings.from_dict(
        {"end_of_chat": {"channels": {"app": {"warn_after_s": 10, "end_after_s": 20}}}}
    )
    eoc = resolve(s.end_of_chat, channel="app")
    assert (eoc.warn_after_s, eoc.end_after_s) == (10.0, 20.0)
    assert isinstance(eoc.end_after_s, float)
    assert resolve(s.end_of_chat, channel="web").end_after_s == 600.0


def test_resolve_leaves_sections_without_overrides_alone() -> None:
    section = AssignmentSettings(strategy=StrategyName.LEAST_BUSY)
    assert resolve(section, channel="app", group="sales") is section


_OVERRIDE_KEYS = ("channels", "groups")


@slow_examples
@given(settings_strategy(), st.data())
def test_resolve_precedence_property(s: ChatSettings, data: st.DataObject) -> None:
    for section in (s.submission, s.end_of_chat):
        channels: Mapping[str, Mapping[str, Any]] = getattr(section, "channels", {})
        groups: Mapping[str, Mapping[str, Any]] = getattr(section, "groups", {})
        channel = data.draw(st.sampled_from([*channels, "no-such-channel"]))
        group = data.draw(st.sampled_from([*groups, "no-such-group"]))
        effective = resolve(section, channel=channel, group=group)
        for field in attrs.fields(type(section)):
            if field.name in _OVERRIDE_KEYS:
                continue
            got = getattr(effective, field.name)
            if field.name in channels.get(channel, {}):
                assert got == channels[channel][field.name]
            elif field.name in groups.get(group, {}):
                assert got == groups[group][field.name]
            else:
                assert got == getattr(section, field.name)


def test_end_of_chat_overrides_per_channel_and_group_and_old_settings_stay_valid() -> None:
    names = {f.name for f in attrs.fields(EndOfChatSettings)}
    assert {"channels", "groups"} <= names
    old = {"end_of_chat": {"end_prompt": "Bye", "channels": {"app": {"end_prompt": "App"}}}}
    s = ChatSettings.from_dict(old)
    assert s.end_of_chat.groups == {}
    assert resolve(s.end_of_chat, channel="app", group="sales").end_prompt == "App"
    assert resolve(s.end_of_chat, channel="web", group="sales").end_prompt == "Bye"
    assert ChatSettings.from_dict(s.to_dict()) == s


def test_unverified_identity_default_is_anonymous() -> None:
    assert ChatSettings().auto_save.unverified_identity is UnverifiedIdentity.ANONYMOUS


# --------------------------------------------------------------------------- generated reference


def test_reference_lists_every_setting_with_default_and_override_scope() -> None:
    text = render_settings_markdown()
    for path in (
        "reception_mode",
        "auto_save.identity_secret",
        "assignment.queue.max_length",
        "assignment.routing_rules[].ip_ranges",
        "assignment.groups.<group>.hours.timezone",
        "end_of_chat.end_after_s",
        "webhooks.endpoints[].secrets",
        "satisfaction.scheme.labels",
    ):
        assert f"`{path}`" in text, path
    row = next(line for line in text.splitlines() if "`end_of_chat.end_after_s`" in line)
    assert "600" in row and "channel" in row
    row = next(line for line in text.splitlines() if "`submission.prompt`" in line)
    assert "channel" in row and "group" in row
    row = next(line for line in text.splitlines() if "`assignment.strategy`" in line)
    assert "round_robin" in row and "group" in row


def test_reference_covers_every_leaf_of_the_default_tree() -> None:
    text = render_settings_markdown()
    documented = set(re.findall(r"^\| `([^`]+)`", text, flags=re.MULTILINE))

    def leaves(node: Any, prefix: str) -> list[str]:
        if isinstance(node, dict) and prefix.count(".") < 1:
            return [p for k, v in node.items() for p in leaves(v, f"{prefix}.{k}".lstrip("."))]
        return [prefix]

    for section, value in ChatSettings().to_dict().items():
        if isinstance(value, dict):
            for key in value:
                assert f"{section}.{key}" in documented, f"{section}.{key}"
        else:
            assert section in documented


def test_docs_settings_md_embeds_the_current_reference() -> None:
    page = DOCS.read_text(encoding="utf-8")
    assert BEGIN_MARKER in page and END_MARKER in page
    embedded = page.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0]
    assert embedded.strip() == render_settings_markdown().strip(), (
        "docs/settings.md is stale: run `python -m chatmgmt._settings_doc` to regenerate it"
    )
