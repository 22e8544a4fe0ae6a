import os
import time

import pytest

import lim


def wait_until(pred, timeout=10.0, interval=0.02):
    """Poll ``pred`` until it is true; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def store(tmp_path):
    s = lim.open(tmp_path / "s.db")
    yield s
    s.close()


@pytest.fixture
def pair(tmp_path):
    """Two stores of one network."""
    a = lim.open(tmp_path / "a.db")
    b = lim.open(tmp_path / "b.db", network_key=a.network_key)
    yield a, b
    b.close()
    a.close()


def find_lim_bin():
    """The `lim` executable (env LIM_BIN): required; the test fails without it."""
    path = os.environ.get("LIM_BIN")
    if not path:
        pytest.fail("LIM_BIN is not set: build the lim command (cmake) and point LIM_BIN at it")
    if not os.access(path, os.X_OK):
        pytest.fail(f"LIM_BIN={path} is not an executable")
    return path
