"""cffi build script (out-of-line API mode), run by setuptools through
``cffi_modules`` in setup.py: compiles every libcore source into the
extension ``lim._lim`` and links the system SQLite and libsodium.

The C sources are read from ``csrc/`` beside setup.py. setup.py fills that
directory from ``../../libcore`` when building inside the repository; an
sdist carries it, so a wheel builds from the sdist alone.
"""
import os
from glob import glob

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))      # src/lim
PROJECT = os.path.dirname(os.path.dirname(HERE))       # bindings/python
CSRC = os.path.join(PROJECT, "csrc")


def _sync_from_checkout():
    """Run setup.py's sync_csrc() (refresh csrc/ from ../../libcore)."""
    import importlib.util
    path = os.path.join(PROJECT, "setup.py")
    if not os.path.exists(path):
        return
    spec = importlib.util.spec_from_file_location("_liblim_setup", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.sync_csrc()


_sync_from_checkout()

sources = sorted(glob(os.path.join(CSRC, "*.c")))
if not sources or not os.path.exists(os.path.join(CSRC, "lim.h")):
    raise RuntimeError(
        "liblim: no C sources in %s (build from the repository checkout, "
        "where ../../libcore exists, or from an sdist)" % CSRC)


def _rel(p):
    # setuptools wants source paths relative to the project (the cwd when
    # setup.py runs); absolute paths put object files in odd places.
    if os.path.abspath(os.getcwd()) == PROJECT:
        return os.path.relpath(p, PROJECT)
    return p


ffibuilder = FFI()
with open(os.path.join(HERE, "_decl.h")) as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "lim._lim",
    '#include "lim.h"\n',
    sources=[_rel(s) for s in sources],
    include_dirs=[_rel(CSRC)],
    libraries=["sqlite3", "sodium"],
    extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-O2", "-pthread",
                        "-fvisibility=hidden", "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
