"""The sdist carries the C sources; a wheel built from the sdist alone, in a
directory with no checkout around it, installs into a fresh virtual
environment and works. Slow (two isolated builds and a venv): one test."""
import filecmp
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]   # bindings/python
REPO = PROJECT.parents[1]
LIBCORE = REPO / "libcore"


def sh(*cmd, cwd, env=None, timeout=900):
    out = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_sdist_wheel_fresh_venv(tmp_path):
    assert (LIBCORE / "include" / "lim.h").exists(), "run from the repository checkout"
    c_files = sorted(p.name for p in (LIBCORE / "src").glob("*.c"))
    h_files = sorted(p.name for p in (LIBCORE / "src").glob("*.h"))

    # 1. sdist from the checkout (an isolated PEP 517 build).
    dist = tmp_path / "dist"
    sh(sys.executable, "-m", "build", "--sdist", "--outdir", dist, PROJECT, cwd=tmp_path)
    (sdist,) = dist.glob("liblim-*.tar.gz")

    # The build-time copy: csrc/ mirrors libcore exactly, and git ignores it.
    csrc = PROJECT / "csrc"
    assert sorted(p.name for p in csrc.iterdir()) == sorted(c_files + h_files + ["lim.h"])
    for name in c_files + h_files:
        assert filecmp.cmp(csrc / name, LIBCORE / "src" / name, shallow=False), name
    assert filecmp.cmp(csrc / "lim.h", LIBCORE / "include" / "lim.h", shallow=False)
    if shutil.which("git") and (REPO / ".git").exists():
        tracked = subprocess.run(["git", "ls-files", "bindings/python/csrc"], cwd=REPO,
                                 capture_output=True, text=True).stdout
        assert tracked == "", "csrc/ must not be committed"
        ignored = subprocess.run(["git", "check-ignore", "-q", f"bindings/python/csrc/{c_files[0]}"],
                                 cwd=REPO)
        assert ignored.returncode == 0, "csrc/ must be git-ignored"

    # The sdist carries every C source and header.
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        root = names[0].split("/")[0]
        for name in c_files + h_files + ["lim.h"]:
            assert f"{root}/csrc/{name}" in names, name
        for name in ("pyproject.toml", "setup.py", "src/lim/_decl.h", "src/lim/_build.py",
                     "src/lim/py.typed", "README.md"):
            assert f"{root}/{name}" in names, name
        work = tmp_path / "unpacked"
        if hasattr(tarfile, "data_filter"):
            tf.extractall(work, filter="data")
        else:  # Python < 3.12 without the backport
            tf.extractall(work)
    src = work / root
    # No checkout in sight of the unpacked sdist.
    assert not (src.parent.parent / "libcore").exists()
    assert not any(REPO in p.parents for p in [src])

    # 2. A wheel from the sdist alone.
    wheels = tmp_path / "wheels"
    sh(sys.executable, "-m", "build", "--wheel", "--outdir", wheels, src, cwd=src)
    (wheel,) = wheels.glob("liblim-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        members = zf.namelist()
    assert any(m.startswith("lim/_lim") and m.endswith(".so") for m in members), members
    assert "lim/py.typed" in members and "lim/__init__.py" in members
    assert not any(m.startswith("csrc/") for m in members)

    # 3. A fresh venv outside the checkout; import and use it from there.
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    sh(py, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    script = r'''
import os, sys, lim
assert os.path.realpath(lim.__file__).startswith(os.path.realpath(sys.prefix)), lim.__file__
with lim.open("w.db") as a, lim.open("w2.db", network_key=a.network_key) as b:
    a.put("people", "ada", {"name": "Ada", "b": b"\x00", "n": {"x": 1.5}})
    a.incr("people", "ada", "visits", 2)
    assert a.get("people", "ada") == {"name": "Ada", "b": b"\x00", "n": {"x": 1.5}, "visits": 2}
    assert len(a.digest()) == 64
    with lim.Node(a) as node:
        lim.sync_once(b, node.address)
    assert a.digest() == b.digest()
    try:
        a.get_field("people", "ada", "nope")
    except KeyError as e:
        assert isinstance(e, lim.NotFound)
    same = a.digest() == b.digest()
print("OK", lim.c_version(), same)
'''
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = sh(py, "-c", script, cwd=run_dir, env=env)
    assert out.strip() == "OK 0.1.0 True"
