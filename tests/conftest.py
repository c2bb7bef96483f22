"""Shared pytest configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# tests import helper modules by package path from here (e.g. assignment.assign_helpers)
sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(__file__).parent / ".hypothesis"))
