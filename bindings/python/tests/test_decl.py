"""The hand-written cdef (src/lim/_decl.h) matches libcore/include/lim.h."""
import re
from pathlib import Path

import pytest

import lim
from lim._lim import ffi, lib

HEADER = Path(__file__).resolve().parents[3] / "libcore" / "include" / "lim.h"
STRUCTS = ["lim_buf", "lim_value", "lim_db_options", "lim_apply_stats", "lim_change_info",
           "lim_node_options", "lim_node_event", "lim_sync_stats"]


def header():
    assert HEADER.exists(), "run from the repository checkout"
    return HEADER.read_text()


def test_every_function_is_declared():
    names = re.findall(r"LIM_EXTERN\s+[^;(]*?\b(lim_\w+)\s*\(", header())
    assert len(names) > 50
    missing = [n for n in names if not hasattr(lib, n)]
    assert not missing, f"add to src/lim/_decl.h: {missing}"


@pytest.mark.parametrize("name", STRUCTS)
def test_struct_layouts_match(name):
    # cffi checks the cdef'd layout against the compiler's on first use.
    assert ffi.sizeof(name) > 0
    assert re.search(r"\b%s;" % name, header()), name


def test_error_codes_match():
    codes = dict((k, int(v)) for k, v in re.findall(r"\b(LIM_E\w+|LIM_ERROR|LIM_OK)\s*=\s*(-?\d+)", header()))
    assert codes
    for k, v in codes.items():
        assert getattr(lib, k) == v, k
        if k not in ("LIM_OK", "LIM_EITEROVER"):
            assert lim.error_class(v).code == v, k


def test_options_versions_and_vfs(tmp_path):
    assert lib.LIM_DB_OPTIONS_VERSION == 1 and lib.LIM_NODE_OPTIONS_VERSION == 1
    with lim.open(tmp_path / "v.db", vfs="unix") as s:
        s.put("t", "d", {"a": 1})
    with pytest.raises(lim.InvalidInput):
        lim.open(tmp_path / "w.db", vfs="no-such-vfs")
