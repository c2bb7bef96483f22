"""Settings refuse what would break the system, and every error names the path and what is allowed.

Every numeric setting refuses inf, NaN and out-of-range values; enums list their values; JSON
shapes (lists for tuples) are accepted; strings must be storable; webhook secrets are checked
once, the same way as the signer checks them.
"""

from __future__ import annotations

import copy
import enum
import json
import math
import sys
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest

from chatmgmt import settings as settings_module
from chatmgmt._secrets import decode_webhook_secret, webhook_secret_problem
from chatmgmt.errors import SettingsError, ValidationError
from chatmgmt.settings import ChatSettings, LimitsSettings, WebhookEndpoint

# A tree with one of everything, so every numeric leaf appears in its dict (list elements and
# overrides included).
FULL: dict[str, Any] = {
    "assignment": {
        "routing_rules": [{"name": "vip", "min_vip_level": 3, "target_group": "vip"}],
        "overflow": [{"target_group": "support"}],
        "queue": {"max_length": 5},
    },
    "submission": {
        "channels": {"app": {"when_waited_longer_than_s": 30.0, "when_queue_longer_than": 2}},
        "groups": {"vip": {"when_waited_longer_than_s": 10.0}},
    },
    "satisfaction": {"groups": {"vip": {"levels": 3, "labels": ["bad", "ok", "good"]}}},
    "end_of_chat": {
        "channels": {"app": {"warn_after_s": 100.0, "end_after_s": 200.0}},
        "groups": {"vip": {"warn_after_s": 50.0, "end_after_s": 400.0}},
    },
    "webhooks": {
        "endpoints": [{"id": "e1", "url": "https://example.com/hook", "secrets": ["whsec_YQ=="]}]
    },
    "sla": {
        "policies": [
            {
                "name": "gold",
                "priorities": [1],
                "first_response_s": 60.0,
                "next_response_s": 120.0,
                "resolution_s": 600.0,
            }
        ]
    },
}


def _numeric_leaves(value: Any, path: str = "") -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(path, key chain) of every number in a plain settings dict."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, ()
    elif isinstance(value, Mapping):
        for key, item in value.items():
            for sub, chain in _numeric_leaves(item, f"{path}.{key}" if path else key):
                yield sub, (key, *chain)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for sub, chain in _numeric_leaves(item, f"{path}[{i}]"):
                yield sub, (i, *chain)


def _set(data: Any, chain: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    target = out
    for key in chain[:-1]:
        target = target[key]
    target[chain[-1]] = value
    return out


FULL_DICT = ChatSettings.from_dict(FULL).to_dict()
LEAVES = list(_numeric_leaves(FULL_DICT))


def test_the_full_tree_reaches_every_numeric_field() -> None:
    # each numeric field of each settings class shows up at least once among the leaves
    names = {path.rsplit(".", 1)[-1].split("[")[0] for path, _ in LEAVES}
    for cls in vars(settings_module).values():
        if not (isinstance(cls, type) and attrs.has(cls)):
            continue
        assert cls.__module__.startswith("chatmgmt.settings."), cls  # the package's pieces
        hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        for field in attrs.fields(cls):
            tp = hints[field.name]
            inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
            if tp in (int, float) or (
                typing.get_origin(tp) is not None and set(inner) <= {int, float}
            ):
                assert field.name in names, f"{cls.__name__}.{field.name} not reached"


@pytest.mark.parametrize(("path", "chain"), LEAVES, ids=[p for p, _ in LEAVES])
@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, 1e300, -1e300, 10**30, -(10**30)], ids=repr
)
def test_every_numeric_setting_refuses_inf_nan_and_out_of_range(
    path: str, chain: tuple[Any, ...], bad: float
) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(_set(FULL_DICT, chain, bad))
    assert info.value.path == path
    # the message says what is allowed
    assert "must be" in info.value.problem or "expected" in info.value.problem


def test_range_errors_name_the_range() -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"assignment": {"queue": {"priority_step_s": float("inf")}}})
    assert str(info.value) == (
        "assignment.queue.priority_step_s: must be a number >= 0 and <= 316224000 (ten years), "
        "got inf"
    )
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"webhooks": {"min_retry_after_error_s": -1}})
    assert info.value.path == "webhooks.min_retry_after_error_s"
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"webhooks": {"jitter": 2}})
    assert str(info.value) == "webhooks.jitter: must be a number >= 0 and <= 1, got 2.0"
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(
            {"webhooks": {"endpoints": [{"id": "e", "url": "https://x.io", "batch_max": 0}]}}
        )
    assert str(info.value) == (
        "webhooks.endpoints[0].batch_max: must be an integer from 1 to 100, got 0"
    )


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(SettingsError, match=r"^webhooks\.retry_schedule_s\[1\]: must be"):
        settings_module.WebhookSettings(retry_schedule_s=(0.0, math.inf))
    with pytest.raises(SettingsError, match=r"^assignment\.queue\.priority_step_s: must be"):
        settings_module.AssignmentSettings(
            queue=settings_module.QueueSettings(priority_step_s=math.nan)
        )


def _enum_paths() -> Iterator[tuple[str, dict[str, Any], type[enum.Enum]]]:
    yield "reception_mode", {"reception_mode": "bogus"}, settings_module.ReceptionMode
    yield (
        "assignment.strategy",
        {"assignment": {"strategy": "bogus"}},
        (settings_module.StrategyName),
    )
    yield (
        "assignment.groups.g.strategy",
        {"assignment": {"groups": {"g": {"strategy": "bogus"}}}},
        settings_module.StrategyName,
    )
    yield (
        "assignment.overflow[0].conditions[0]",
        {"assignment": {"overflow": [{"target_group": "g", "conditions": ["bogus"]}]}},
        settings_module.OverflowCondition,
    )
    yield (
        "assignment.queue.on_limit",
        {"assignment": {"queue": {"on_limit": "bogus"}}},
        (settings_module.QueueLimitAction),
    )
    yield (
        "auto_save.unverified_identity",
        {"auto_save": {"unverified_identity": "bogus"}},
        (settings_module.UnverifiedIdentity),
    )
    yield "submission.mode", {"submission": {"mode": "bogus"}}, settings_module.SubmissionMode
    yield (
        "satisfaction.invite_on_end_reasons[0]",
        {"satisfaction": {"invite_on_end_reasons": ["bogus"]}},
        settings_module.EndReason,
    )
    yield (
        "satisfaction.second_rating",
        {"satisfaction": {"second_rating": "bogus"}},
        (settings_module.SecondRating),
    )


@pytest.mark.parametrize(("path", "data", "enum_type"), list(_enum_paths()))
def test_enum_errors_list_the_allowed_values(
    path: str, data: dict[str, Any], enum_type: type[enum.Enum]
) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path
    for member in enum_type:
        assert repr(member.value) in info.value.problem
    assert enum_type.__name__ not in info.value.problem
    assert "'bogus'" in info.value.problem


def test_json_shapes_are_accepted() -> None:
    data = json.loads(json.dumps(ChatSettings.from_dict(FULL).to_dict()))
    assert ChatSettings.from_dict(data) == ChatSettings.from_dict(FULL)
    s = ChatSettings.from_dict({"auto_save": {"channels": ["web", "app"]}})
    assert s.auto_save.channels == ("web", "app")
    # JSON has one number type: 3.0 is accepted where an integer is expected
    assert ChatSettings.from_dict({"assignment": {"queue": {"max_length": 3.0}}}).assignment.queue
    with pytest.raises(SettingsError, match=r"expected an integer, got 3\.5"):
        ChatSettings.from_dict({"assignment": {"queue": {"max_length": 3.5}}})


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"assignment": []}, "assignment", "expected a mapping"),
        ({"assignment": "x"}, "assignment", "expected a mapping"),
        ({"assignment": {"queue": 5}}, "assignment.queue", "expected a mapping"),
        ({"assignment": {"groups": []}}, "assignment.groups", "expected a mapping"),
        ({"auto_save": {"channels": "web"}}, "auto_save.channels", "expected a list"),
        ({"webhooks": {"endpoints": {"a": 1}}}, "webhooks.endpoints", "expected a list"),
        ({1: "x"}, "", "must be strings, got 1 (int)"),
        ({"assignment": {"groups": {2: {}}}}, "assignment.groups", "must be strings, got 2"),
        ({"end_of_chat": {"channels": {"app": {None: 1}}}}, "end_of_chat.channels.app", "None"),
    ],
)
def test_wrong_shapes_and_keys_give_a_path(data: Any, path: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path
    assert words in info.value.problem


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"end_of_chat": {"end_prompt": "bye\x00"}}, "end_of_chat.end_prompt"),
        ({"satisfaction": {"invite_prompt": "\ud800"}}, "satisfaction.invite_prompt"),
        (
            {"sensitive_words": {"customer": [{"word": "a\udfffb"}]}},
            "sensitive_words.customer[0].word",
        ),
        ({"sensitive_words": {"mask_char": "\x00"}}, "sensitive_words.mask_char"),
        ({"auto_save": {"channels": ["web", "a\x00"]}}, "auto_save.channels[1]"),
        (
            {"submission": {"channels": {"app": {"prompt": "\ud800"}}}},
            "submission.channels.app.prompt",
        ),
    ],
)
def test_unstorable_strings_are_refused_with_the_path(data: Any, path: str) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == path
    str(info.value).encode("utf-8")  # the message itself can be printed


# --------------------------------------------------------------------------- webhook secrets


def test_valid_secrets_are_accepted_by_settings_and_decoded_alike() -> None:
    for secret in ["whsec_YQ==", "whsec_YQ", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]:
        WebhookEndpoint(id="e", url="https://example.com", secrets=(secret,)).check("ep")
        assert decode_webhook_secret(secret)
    assert decode_webhook_secret("whsec_YQ==") == b"a"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("whsec_aaaaa", "not valid base64"),
        ("whsec_a-b_c", "outside the base64 alphabet"),
        ("aaaaaaaaaaaa", "does not start with 'whsec_'"),
        ("whsec_", "no key"),
        ("whsec_====", "no key"),
    ],
)
def test_bad_secrets_say_why_the_same_way_in_settings_and_signer(secret: str, why: str) -> None:
    problem = webhook_secret_problem(secret)
    assert problem is not None and why in problem
    assert "whsec_YQ==" in problem  # an example of a valid one
    data = {"webhooks": {"endpoints": [{"id": "e", "url": "https://x.io", "secrets": [secret]}]}}
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == "webhooks.endpoints[0].secrets[0]"
    assert problem in info.value.problem
    from chatmgmt.webhook._signing import Signer

    with pytest.raises(ValidationError) as signer_error:
        Signer([secret])
    assert problem in str(signer_error.value)
    key_part = secret.removeprefix("whsec_")
    if len(key_part) > 4:
        assert key_part not in str(info.value) and key_part not in str(signer_error.value)


# --------------------------------------------------------------------------- limits, coerce


def test_message_limit_setting() -> None:
    assert ChatSettings().limits.max_message_chars == 10_000
    s = ChatSettings.from_dict({"limits": {"max_message_chars": 500}})
    assert s.limits == LimitsSettings(max_message_chars=500)
    assert ChatSettings.from_dict(s.to_dict()) == s
    for bad in [0, -1, 10**7, 1.5, "10"]:
        with pytest.raises(SettingsError) as info:
            ChatSettings.from_dict({"limits": {"max_message_chars": bad}})
        assert info.value.path == "limits.max_message_chars"


def test_coerce_accepts_a_tree_a_mapping_or_none() -> None:
    s = ChatSettings.from_dict(FULL)
    assert ChatSettings.coerce(s) is s
    assert ChatSettings.coerce(None) == ChatSettings()
    assert ChatSettings.coerce(FULL) == s
    with pytest.raises(SettingsError) as info:
        ChatSettings.coerce({"assignment": {"strategy": "bogus"}})
    assert info.value.path == "assignment.strategy"
    with pytest.raises(TypeError, match=r"ChatSettings\.from_dict"):
        ChatSettings.coerce(["not", "settings"])  # type: ignore[arg-type]


def test_manager_accepts_a_settings_mapping() -> None:
    from chatmgmt import ChatManager

    manager = ChatManager(settings={"assignment": {"strategy": "least_busy"}})  # type: ignore[arg-type]
    assert manager.settings.assignment.strategy is settings_module.StrategyName.LEAST_BUSY
    with pytest.raises(SettingsError) as info:
        ChatManager(settings={"assignment": []})  # type: ignore[arg-type]
    assert info.value.path == "assignment"
