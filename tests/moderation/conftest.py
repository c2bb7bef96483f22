"""Shared fixtures for the moderation tests (test data in ``data/``).

Every moderation test runs twice: on the C speedups (id ``speedups``) and on the pure-Python
normalizer (id ``pure``), through the autouse fixture ``normalizer_path``. Without the
extension (not built, or ``CHATMGMT_NO_SPEEDUPS`` set) only the ``pure`` run is generated.
``test_speedups.py`` compares both paths itself and is not doubled.

Filters built outside a test function would not see the switch: the ``pure`` run rebuilds every
:class:`SensitiveWordFilter` held in a module global of the test module (``MASKING`` in
``test_properties.py``), and ``corpus_filter`` keeps one filter per path.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmgmt.moderation import Normalization, SensitiveWordFilter, WordList, _normalize

DATA = Path(__file__).parent / "data"

SPEEDUPS = "c"
PURE = "python"
_IDS = {SPEEDUPS: "speedups", PURE: "pure"}
_NOT_DOUBLED = {"test_speedups"}
"""Test modules that compare the paths themselves."""

_built_with_c = _normalize._speedups is not None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "normalizer_path" not in metafunc.fixturenames:
        return
    if metafunc.module.__name__.rpartition(".")[2] in _NOT_DOUBLED:
        return
    paths = [SPEEDUPS, PURE] if _built_with_c else [PURE]
    metafunc.parametrize("normalizer_path", paths, ids=[_IDS[p] for p in paths], indirect=True)


@pytest.fixture(autouse=True)
def normalizer_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"c"`` or ``"python"``: the normalizer the filters built in this test use.

    For ``"python"`` the module global ``_normalize._speedups`` is None for the whole test (and
    the normalizer cache is cleared before and after, so no C-backed normalizer leaks in or
    out), and module-level filters of the test module are swapped for pure-Python rebuilds.
    Unparametrized (``test_speedups.py``): ``"c"``, nothing changed."""
    path: str = getattr(request, "param", SPEEDUPS)
    if path != PURE:
        yield path
        return
    saved = _normalize._speedups
    module = request.module
    swapped: dict[str, SensitiveWordFilter] = {}
    _normalize._speedups = None  # type: ignore[assignment]
    _normalize._normalizer.cache_clear()
    try:
        for name, value in list(vars(module).items()):
            if isinstance(value, SensitiveWordFilter):
                swapped[name] = value
                # unpickling rebuilds the filter from its lists, now on the pure path
                setattr(module, name, pickle.loads(pickle.dumps(value)))
        assert not _normalize._normalizer(Normalization()).fast
        for name in swapped:
            assert getattr(module, name)._fast is None, name
        yield path
    finally:
        for name, value in swapped.items():
            setattr(module, name, value)
        _normalize._speedups = saved
        _normalize._normalizer.cache_clear()


@pytest.fixture(scope="session")
def _corpus_filters() -> dict[str, SensitiveWordFilter]:
    return {}


@pytest.fixture
def corpus_filter(
    normalizer_path: str, _corpus_filters: dict[str, SensitiveWordFilter]
) -> SensitiveWordFilter:
    """The filter the labelled corpus is written for: every list on both roles, t2s on.

    Built once per normalizer path (``normalizer_path`` is set up first)."""
    flt = _corpus_filters.get(normalizer_path)
    if flt is None:
        flt = _corpus_filters[normalizer_path] = SensitiveWordFilter(
            both=WordList.from_file(DATA / "words.tsv"),
            allow=WordList.from_file(DATA / "allow.txt").words,
            normalization=Normalization(traditional_to_simplified=True),
        )
    assert (flt._fast is None) == (normalizer_path == PURE or not _built_with_c)
    return flt
