"""Starts the real app once per session (see support.App)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import App, find_dll  # noqa: E402


@pytest.fixture(scope="session")
def app() -> Iterator[App]:
    data = tempfile.mkdtemp(prefix="rp-python-")
    server = App(find_dll(), data)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.log.close()
        if os.environ.get("RP_KEEP_DATA") is None:
            shutil.rmtree(data, ignore_errors=True)


