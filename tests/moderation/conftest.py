"""Shared fixtures for the moderation tests (test data in ``data/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmgmt.moderation import Normalization, SensitiveWordFilter, WordList

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def corpus_filter() -> SensitiveWordFilter:
    """The filter the labelled corpus is written for: every list on both roles, t2s on."""
    return SensitiveWordFilter(
        both=WordList.from_file(DATA / "words.tsv"),
        allow=WordList.from_file(DATA / "allow.txt").words,
        normalization=Normalization(traditional_to_simplified=True),
    )
