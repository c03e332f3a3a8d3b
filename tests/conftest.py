"""Shared fixtures: a throwaway PKI, a running FMC emulator, and the CLI run as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_PASSWORD = "s3cret-pkcs12-pw"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    from qualys_connector.emulators.pki import init_pki
    return init_pki(str(tmp_path_factory.mktemp("pki")), client_password=CLIENT_PASSWORD)


@pytest.fixture(autouse=True)
def private_state_home(request, tmp_path_factory, monkeypatch):
    """Every test gets its own default state directory: delivery records never leak between tests
    (nor into the home directory of whoever runs them). test_statedir sets up the environment of
    each of its runs itself (run_cli adds os.environ to it, so it must not hold a value there)."""
    if request.module.__name__ != "test_statedir" and not os.environ.get("QC_STATE_DIR"):
        # beside tmp_path, not in it: tests that list their tmp_path see only their own files
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))


@pytest.fixture
def fmc(pki):
    from qualys_connector.emulators.fmc.server import FMCEmulator
    with FMCEmulator(pki=pki, accept_unknown_hosts=True) as emulator:
        yield emulator


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    path = tmp_path / "locks"
    monkeypatch.setenv("QC_LOCK_DIR", str(path))
    return path


def run_cli(*args, cwd=None, env=None, program="qualys_connector", timeout=120):
    """Run a console command in a child process, exactly as cron would."""
    full = dict(os.environ)
    full.update(env or {})
    module = {"qualys_connector": "qualys_connector", "process-multiple": "qualys_connector.multi_main"}[program]
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


def wait_for(condition, timeout=30):
    """True as soon as ``condition()`` holds (polled every 20 ms), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
