"""Shared pytest configuration."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# tests import helper modules by package path from here (e.g. assignment.assign_helpers)
sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(__file__).parent / ".hypothesis"))


_RAM_DIR = Path("/dev/shm")
_RAM_DIR_FREE = 1 << 30  # bytes the RAM file system must have free to be used
_RAM_BASE = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Put the tests' temporary files (``tmp_path``: SQLite databases above all) on a RAM file
    system when the machine has one and no ``--basetemp`` was given.

    Only the cost of ``fsync`` changes: SQLite runs the same statements, journal and locks on
    tmpfs, and what a test kills is a process (kill -9), never the machine, so the page cache
    keeps every committed write either way. ``CHATMGMT_TEST_TMP=disk`` keeps them on disk.
    """
    if config.option.basetemp is not None or os.environ.get("CHATMGMT_TEST_TMP") == "disk":
        return
    try:
        usable = os.access(_RAM_DIR, os.W_OK) and shutil.disk_usage(_RAM_DIR).free > _RAM_DIR_FREE
    except OSError:
        return
    if usable:
        base = tempfile.mkdtemp(prefix="chatmgmt-pytest-", dir=_RAM_DIR)
        config.option.basetemp = base
        config.stash[_RAM_BASE] = base


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(_RAM_BASE, None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
