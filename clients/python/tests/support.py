"""Test support: the real app (the built ReviewerPortal.dll, embedded Garnet, SQLite in a temporary folder, demo data).

REVIEWERPORTAL_DLL names the built app; without it the newest src/ReviewerPortal/bin/*/net10.0/ReviewerPortal.dll is
used (build it first: ``dotnet build src/ReviewerPortal``).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]


def find_dll() -> str:
    configured = os.environ.get("REVIEWERPORTAL_DLL")
    if configured:
        return configured
    found = glob.glob(str(REPO / "src/ReviewerPortal/bin/*/net10.0/ReviewerPortal.dll"))
    if not found:
        pytest.exit("ReviewerPortal.dll not found: run 'dotnet build src/ReviewerPortal' or set REVIEWERPORTAL_DLL", 2)
    return max(found, key=os.path.getmtime)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    """The app as a child process; ``stop``/``start`` restart it on the same port and data folder."""

    def __init__(self, dll: str, data: str) -> None:
        self.dll = dll
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log = open(os.path.join(data, "app.log"), "ab")

    def start(self) -> None:
        env = dict(os.environ, ASPNETCORE_ENVIRONMENT="Development", Urls=self.url,
                   Storage__DataPath=os.path.join(self.data, "store"), DOTNET_NOLOGO="1",
                   Logging__LogLevel__Default="Warning")
        env.pop("ASPNETCORE_URLS", None)
        self.process = subprocess.Popen(["dotnet", self.dll], cwd=os.path.dirname(self.dll), env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the app did not answer /healthz within 120 s; see {self.log.name}")

    def stop(self, crash: bool = False) -> None:
        """Stops the app and its embedded Garnet (the whole process group this fixture started); ``crash`` kills them."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL if crash else signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        # Garnet lives in the same process group; make sure none is left.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None


def pending_with_key(app: App, key: str, timeout: float = 30) -> str:
    """The id of acme's pending approval submitted with ``key`` (as a reviewer finds it in the queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = httpx.get(app.url + "/api/v1/approvals", params={"tenant": "acme", "state": "pending", "limit": 200},
                         headers={"Authorization": "Bearer demo-alice-token"}, timeout=10).json()
        for item in page["items"]:
            if item.get("idempotencyKey") == key:
                return str(item["id"])
        time.sleep(0.1)
    raise AssertionError(f"no pending approval with key {key}")


def in_thread(target: Callable[[], object]) -> "Result":
    result = Result()

    def run() -> None:
        try:
            result.value = target()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            result.error = error
    result.thread = threading.Thread(target=run, daemon=True)
    result.thread.start()
    return result


class Result:
    value: object = None
    error: Optional[BaseException] = None
    thread: threading.Thread

    def get(self, timeout: float = 90) -> object:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.value


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


