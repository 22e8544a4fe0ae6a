"""setuptools glue: the cffi extension (see src/lim/_build.py) and the
build-time copy of the C sources into csrc/.

Inside the repository (../../libcore exists) every build, sdist or install
first mirrors libcore/src/*.c, libcore/src/*.h and libcore/include/lim.h into
csrc/ (git-ignored). MANIFEST.in puts csrc/ into the sdist, so a wheel builds
from the sdist alone, without the repository.
"""
import filecmp
import os
import shutil
from glob import glob

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")
LIBCORE = os.path.normpath(os.path.join(HERE, "..", "..", "libcore"))


def sync_csrc():
    """Mirror the C sources into csrc/ when the repository is around;
    returns True if it was (csrc/ is then exactly libcore's files)."""
    header = os.path.join(LIBCORE, "include", "lim.h")
    if not os.path.isfile(header):
        return False
    wanted = {os.path.basename(p): p
              for p in glob(os.path.join(LIBCORE, "src", "*.c")) + glob(os.path.join(LIBCORE, "src", "*.h"))}
    wanted["lim.h"] = header
    os.makedirs(CSRC, exist_ok=True)
    for name in os.listdir(CSRC):
        if name not in wanted:
            os.remove(os.path.join(CSRC, name))
    for name, src in wanted.items():
        dst = os.path.join(CSRC, name)
        if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
            tmp = dst + ".tmp%d" % os.getpid()
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    return True


if __name__ == "__main__":
    from setuptools import setup

    sync_csrc()
    setup(cffi_modules=["src/lim/_build.py:ffibuilder"])
