"""The labelled corpus: bypasses and innocent texts, English and Chinese, with expected hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatmgmt.model import MessageRole
from chatmgmt.moderation import SensitiveWordFilter

CORPUS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "corpus.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 200
    assert sum(1 for c in CORPUS if not c["hits"]) >= 50
    assert sum(1 for c in CORPUS if any("\u4e00" <= ch <= "\u9fff" for ch in c["text"])) >= 60


@pytest.mark.parametrize(
    "case", CORPUS, ids=[f"{i}-{c['note'] or 'case'}" for i, c in enumerate(CORPUS)]
)
def test_corpus_case(corpus_filter: SensitiveWordFilter, case: dict[str, object]) -> None:
    text = case["text"]
    assert isinstance(text, str)
    verdict = corpus_filter.check(text, MessageRole(case["role"]))
    assert [h.word for h in verdict.hits] == case["hits"]
    for h in verdict.hits:
        # the offsets cover exactly what the sender typed for the word (a phrase's words may
        # be joined by noise: "refund-guaranteed" normalizes to "refundguaranteed")
        assert 0 <= h.start < h.end <= len(text)
        typed = corpus_filter.normalize(text[h.start : h.end])
        word = corpus_filter.normalize(h.word)
        assert typed == word or (" " in word and typed == word.replace(" ", ""))
        assert not text[h.start].isspace() and not text[h.end - 1].isspace()
