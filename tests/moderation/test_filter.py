"""Example-based tests of the filter: roles, actions, allow-lists, overlaps, loading, reload."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from chatmgmt.errors import SettingsError, ValidationError
from chatmgmt.model import MessageRole
from chatmgmt.moderation import (
    DEFAULT_BLOCK_PROMPT,
    Action,
    FilterHolder,
    Hit,
    Normalization,
    SensitiveWord,
    SensitiveWordFilter,
    Verdict,
    WordList,
    normalize,
)
from chatmgmt.settings import ChatSettings, SensitiveWordSettings, WordEntry

C = MessageRole.CUSTOMER
A = MessageRole.AGENT


def test_actions_are_ordered_by_strength() -> None:
    assert Action.NONE < Action.WARN < Action.MASK < Action.BLOCK
    assert max(Action.WARN, Action.BLOCK, Action.MASK) is Action.BLOCK
    assert Action.parse("Mask") is Action.MASK
    assert str(Action.BLOCK) == "block" and Action.WARN.label == "warn"
    with pytest.raises(ValidationError):
        Action.parse("delete")


def test_block_mask_warn() -> None:
    f = SensitiveWordFilter(
        customer=[("fuck", "abuse", "block"), ("shit", "abuse", "mask"), ("darn", "mild", "warn")]
    )
    v = f.check("oh fuck", C)
    assert v.action is Action.BLOCK and v.blocked
    assert v.text == "" and v.prompt == DEFAULT_BLOCK_PROMPT
    v = f.check("oh s.h.i.t!", C)
    assert v.action is Action.MASK and v.text == "oh *******!" and v.prompt is None
    v = f.check("darn it", C)
    assert v.action is Action.WARN and v.text == "darn it" and not v.blocked
    v = f.check("nice day", C)
    assert v == Verdict(Action.NONE, (), "nice day") and v.clean


def test_verdict_action_is_strongest_and_only_mask_hits_are_masked() -> None:
    f = SensitiveWordFilter(customer=[("shit", "a", "mask"), ("darn", "b", "warn")])
    v = f.check("darn shit darn", C)
    assert v.action is Action.MASK
    assert v.text == "darn **** darn"
    assert v.words == ("darn", "shit") and v.categories == ("b", "a")
    assert [h.action for h in v.hits] == [Action.WARN, Action.MASK, Action.WARN]


def test_hit_fields() -> None:
    f = SensitiveWordFilter(agent=[("fuck", "abuse", "mask")])
    (hit,) = f.check("Hey ＦＵＣＫ!", A).hits
    assert hit == Hit("fuck", "abuse", Action.MASK, A, 4, 8)


def test_mask_char_and_prompt() -> None:
    f = SensitiveWordFilter(
        customer=[("shit", "x", "mask"), ("fuck", "x", "block")],
        mask_char="#",
        block_prompt="Please be polite.",
    )
    assert f.check("shit", C).text == "####"
    assert f.check("fuck", C).prompt == "Please be polite."
    with pytest.raises(ValidationError):
        SensitiveWordFilter(mask_char="**")


def test_roles() -> None:
    f = SensitiveWordFilter(customer=["alpha"], agent=["bravo"], both=["charlie"])
    assert f.check("alpha bravo charlie", C).words == ("alpha", "charlie")
    assert f.check("alpha bravo charlie", A).words == ("bravo", "charlie")
    for role in (MessageRole.SYSTEM, MessageRole.BOT):
        v = f.check("alpha bravo charlie", role)
        assert v.clean and v.text == "alpha bravo charlie"


def test_strongest_entry_wins_for_a_word_listed_twice() -> None:
    f = SensitiveWordFilter(customer=[("fuck", "a", "warn")], both=[("FUCK", "b", "block")])
    (hit,) = f.check("fuck", C).hits
    assert (hit.word, hit.category, hit.action) == ("FUCK", "b", Action.BLOCK)


def test_allow_lists_per_role() -> None:
    f = SensitiveWordFilter(
        both=["cunt", "黄片"],
        allow=["Scunthorpe"],
        allow_customer=["三黄片"],
        allow_agent=[],
    )
    assert f.check("Scunthorpe", C).clean and f.check("Scunthorpe", A).clean
    assert f.check("三黄片", C).clean
    assert f.check("三黄片", A).words == ("黄片",)
    assert f.check("黄片", C).words == ("黄片",)
    assert f.check("S.c.u.n.t.h.o.r.p.e", C).clean


def test_word_boundaries_for_latin_words_only() -> None:
    f = SensitiveWordFilter(customer=["ass", "anal", "黄片"])
    assert f.check("classic assessment canal analysis", C).clean
    assert f.check("ass", C).words == ("ass",)
    assert f.check("hello,ass", C).words == ("ass",)
    assert f.check("看黄片了", C).words == ("黄片",)
    assert f.check("我ass你", C).words == ("ass",)


def test_longest_match_configurable() -> None:
    words = [("知识产权", "x", "warn"), ("国家知识产权局", "y", "block")]
    longest = SensitiveWordFilter(customer=words)
    v = longest.check("国家知识产权局", C)
    assert v.words == ("国家知识产权局",)
    every = SensitiveWordFilter(customer=words, longest_match=False)
    v = every.check("国家知识产权局", C)
    assert v.words == ("国家知识产权局", "知识产权")
    assert v.action is Action.BLOCK


def test_longest_match_picks_longest_of_overlapping_chain() -> None:
    f = SensitiveWordFilter(customer=["ab", "bcd", "de"], normalization=Normalization.none())
    assert [(h.word, h.start) for h in f.check("xabcdex", C).hits] == []  # boundaries
    g = SensitiveWordFilter(customer=["甲乙", "乙丙丁", "丁戊"])
    assert [(h.word, h.start) for h in g.check("甲乙丙丁戊", C).hits] == [("乙丙丁", 1)]


def test_traditional_and_repeats_switches() -> None:
    base = SensitiveWordFilter(customer=["黄片", "fuck"])
    assert base.check("黃片", C).clean and base.check("fuuuck", C).clean
    on = SensitiveWordFilter(
        customer=["黄片", "fuck"],
        normalization=Normalization(traditional_to_simplified=True, collapse_repeats=True),
    )
    assert on.check("黃片", C).words == ("黄片",)
    v = on.check("fuuuuck!", C)
    assert (v.hits[0].start, v.hits[0].end) == (0, 7)
    assert v.action is Action.BLOCK and v.text == ""


def test_every_step_can_be_switched_off() -> None:
    f = SensitiveWordFilter(customer=["fuck"], normalization=Normalization.none())
    assert f.check("fuck", C).words == ("fuck",)
    for text in ("FUCK", "ｆｕｃｋ", "f.u.c.k", "ⓕⓤⓒⓚ", "fuсk"):
        assert f.check(text, C).clean, text
    assert normalize("F.U.C.K") == "fuck"
    assert normalize("F.U.C.K", Normalization(fold_case=False)) == "FUCK"
    assert normalize("ｆ", Normalization(fold_width=False)) == "ｆ"
    assert normalize("ⓕ", Normalization(fold_styles=False)) == "ⓕ"
    assert normalize("fuсk", Normalization(fold_lookalikes=False)) == "fuсk"
    assert normalize("f.u.c.k", Normalization(skip_noise=False)) == "f.u.c.k"


def test_word_list_sources(tmp_path: Path) -> None:
    wl = WordList.of(
        [
            "plain",
            ("tuple", "cat"),
            ("triple", "cat", "warn"),
            {"word": "mapping", "action": "mask"},
            SensitiveWord("entry", "c2", Action.WARN),
            WordEntry(word="settings", category="c3", action="mask"),
        ]
    )
    assert [(e.word, e.category, e.action) for e in wl] == [
        ("plain", "default", Action.BLOCK),
        ("tuple", "cat", Action.BLOCK),
        ("triple", "cat", Action.WARN),
        ("mapping", "default", Action.MASK),
        ("entry", "c2", Action.WARN),
        ("settings", "c3", Action.MASK),
    ]
    path = tmp_path / "words.txt"
    path.write_text(wl.dump() + "\n# comment\nbare\n", encoding="utf-8")
    loaded = WordList.from_file(path)
    assert loaded.entries[:6] == wl.entries
    assert loaded.entries[6] == SensitiveWord("bare")
    assert WordList.parse(wl.dump()) == wl
    for bad in (["  "], [("w", "c", "explode")], [42], "word"):
        with pytest.raises(ValidationError):
            WordList.of(bad)  # type: ignore[arg-type]
    path.write_text("a\tb\tblock\textra\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"words\.txt:1"):
        WordList.from_file(path)


def test_from_files(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("cunt\tabuse\tblock\n", encoding="utf-8")
    (tmp_path / "allow.txt").write_text("Scunthorpe\n", encoding="utf-8")
    f = SensitiveWordFilter.from_files(
        customer=str(tmp_path / "c.txt"), allow=str(tmp_path / "allow.txt")
    )
    assert f.check("Scunthorpe", C).clean
    assert f.check("cunt", C).blocked


def test_from_settings() -> None:
    settings = ChatSettings.from_dict(
        {
            "sensitive_words": {
                "customer": [{"word": "fuck", "category": "abuse", "action": "mask"}],
                "agent": [{"word": "idiot", "action": "warn"}],
                "both": [{"word": "黄片"}],
                "allow": ["三黄片"],
                "mask_char": "#",
                "block_prompt": "No.",
                "traditional_to_simplified": True,
            }
        }
    ).sensitive_words
    f = SensitiveWordFilter.from_settings(settings)
    assert f.check("fuck", C).text == "####"
    assert f.check("idiot", A).action is Action.WARN
    assert f.check("idiot", C).clean
    assert f.check("黃片", A).prompt == "No."
    assert f.check("三黄片", C).clean
    off = SensitiveWordFilter.from_settings(
        SensitiveWordSettings(enabled=False, both=(WordEntry("x"),))
    )
    assert off.check("x", C).clean


def test_from_settings_reports_bad_entries_as_settings_errors() -> None:
    settings = SensitiveWordSettings(customer=(WordEntry("ok"),), allow=("  ",))
    with pytest.raises(SettingsError):
        SensitiveWordFilter.from_settings(settings)


def test_filter_is_immutable_and_picklable() -> None:
    f = SensitiveWordFilter(
        customer=[("fuck", "abuse", "mask")],
        both=["黄片"],
        allow=["三黄片"],
        normalization=Normalization.all(),
        mask_char="#",
    )
    with pytest.raises(AttributeError):
        f.mask_char = "*"  # type: ignore[misc]
    g = pickle.loads(pickle.dumps(f))
    for text in ("f u c k 黃片 三黄片", "ⓕⓤⓒⓚ"):
        assert g.check(text, C) == f.check(text, C)
    assert g.normalization == f.normalization and g.mask_char == "#"


def test_holder_reload_is_atomic_under_threads() -> None:
    old = SensitiveWordFilter(customer=["alpha"])
    new = SensitiveWordFilter(customer=["bravo"])
    holder = FilterHolder(old)
    seen: set[tuple[str, ...]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.add(holder.check("alpha bravo", C).words)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        holder.reload(new if i % 2 == 0 else old)
    assert holder.reload(new) in (old, new)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    # every check saw exactly one filter, never a mix
    assert seen <= {("alpha",), ("bravo",)}
    assert holder.filter is new
    with pytest.raises(ValidationError):
        holder.reload("not a filter")  # type: ignore[arg-type]


def test_bad_backend() -> None:
    with pytest.raises(ValidationError):
        SensitiveWordFilter(backend="regex")
    with pytest.raises(ValidationError):
        SensitiveWordFilter(backend=object())  # type: ignore[arg-type]
