#!/bin/sh
# Install smoke test (ctest: test_install).
#
# Installs the current build tree into a temporary prefix, then builds and
# runs a tiny consumer of the installed library three ways:
#   1. cc $(pkg-config --cflags --libs liblim)       (shared liblim.so)
#   2. a CMake project: find_package(liblim) + lim::lim         (shared)
#   3. the same project's lim::lim_static target                 (static)
# and checks that liblim.so exports only lim_* symbols.
# Nothing is skipped: any missing tool is a failure.
#
# Environment (set by CMake): LIM_BUILD_DIR LIM_SOURCE_DIR LIM_CC LIM_CMAKE
# LIM_CMAKE_GENERATOR LIM_CONFIG LIM_EXTRA_CFLAGS (sanitizer flags, may be "").
set -eu

fail() { echo "test_install: FAIL: $*" >&2; exit 1; }

: "${LIM_BUILD_DIR:?}" "${LIM_SOURCE_DIR:?}"
CC=${LIM_CC:-cc}
CMAKE=${LIM_CMAKE:-cmake}
CONFIG=${LIM_CONFIG:-}
EXTRA=${LIM_EXTRA_CFLAGS:-}
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config not found"
command -v "$CC" >/dev/null 2>&1 || fail "C compiler '$CC' not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/lim-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix="$work/prefix"

echo "== cmake --install $LIM_BUILD_DIR --prefix $prefix"
if [ -n "$CONFIG" ]; then
	"$CMAKE" --install "$LIM_BUILD_DIR" --prefix "$prefix" --config "$CONFIG" >"$work/install.log" 2>&1 \
		|| { cat "$work/install.log"; fail "cmake --install"; }
else
	"$CMAKE" --install "$LIM_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1 \
		|| { cat "$work/install.log"; fail "cmake --install"; }
fi

pcfile=$(find "$prefix" -name liblim.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pcfile" ] || fail "liblim.pc not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
[ -f "$prefix/include/lim.h" ] || fail "include/lim.h not installed"
[ -f "$libdir/liblim.a" ] || fail "liblim.a not installed in $libdir"
[ -e "$libdir/liblim.so" ] || fail "liblim.so (dev symlink) not installed in $libdir"
ls "$libdir"/liblim.so.* >/dev/null 2>&1 || fail "versioned liblim.so.N not installed"
[ -f "$libdir/cmake/liblim/liblimConfig.cmake" ] || fail "liblimConfig.cmake not installed"
[ -f "$libdir/cmake/liblim/liblimConfigVersion.cmake" ] || fail "liblimConfigVersion.cmake not installed"

# Only the public API leaves the shared library (hidden visibility works).
if command -v nm >/dev/null 2>&1; then
	leaked=$(nm -D --defined-only "$libdir/liblim.so" | awk '{print $NF}' \
		| grep -v -e '^lim_' -e '^_init$' -e '^_fini$' -e '^_edata$' -e '^_end$' \
			-e '^__bss_start$' -e '^_ITM_' -e '^__gmon_start__$' || true)
	[ -z "$leaked" ] || fail "liblim.so exports non-lim_ symbols: $(echo $leaked)"
else
	fail "nm not found"
fi

cat >"$work/main.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include <lim.h>

int main(void)
{
	lim_db *db = NULL;
	int rc;

	if (strcmp(lim_version(), LIM_VERSION) != 0) {
		fprintf(stderr, "version mismatch: lib %s, header %s\n",
			lim_version(), LIM_VERSION);
		return 1;
	}
	rc = lim_db_open(&db, ":memory:", NULL);
	if (rc != 0 || db == NULL) {
		fprintf(stderr, "lim_db_open: %d %s\n", rc, lim_error_last());
		return 1;
	}
	lim_db_free(db);
	db = NULL; /* so a leak inside lim_db_free is not hidden by a live pointer */
	printf("ok %s\n", lim_version());
	return 0;
}
CEOF

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== pkg-config consumer"
pc_flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs liblim) \
	|| fail "pkg-config --cflags --libs liblim"
echo "   $CC $EXTRA main.c $pc_flags"
# shellcheck disable=SC2086 # word splitting of flags is intended
"$CC" $EXTRA -o "$work/with_pkgconfig" "$work/main.c" $pc_flags || fail "compile with pkg-config flags"
"$work/with_pkgconfig" || fail "pkg-config consumer did not run"
PKG_CONFIG_PATH="$pcdir" pkg-config --static --libs liblim >/dev/null || fail "pkg-config --static --libs liblim"

echo "== find_package(liblim) consumer"
mkdir -p "$work/proj"
cp "$work/main.c" "$work/proj/main.c"
cat >"$work/proj/CMakeLists.txt" <<'CEOF'
cmake_minimum_required(VERSION 3.16)
project(lim_consumer C)
find_package(liblim REQUIRED)
add_executable(with_cmake main.c)
target_link_libraries(with_cmake PRIVATE lim::lim)
add_executable(with_cmake_static main.c)
target_link_libraries(with_cmake_static PRIVATE lim::lim_static)
CEOF
set -- -S "$work/proj" -B "$work/proj/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$EXTRA" \
	-DCMAKE_EXE_LINKER_FLAGS="$EXTRA"
if [ -n "${LIM_CMAKE_GENERATOR:-}" ]; then
	set -- "$@" -G "$LIM_CMAKE_GENERATOR"
fi
"$CMAKE" "$@" >"$work/proj.log" 2>&1 || { cat "$work/proj.log"; fail "configure consumer project"; }
"$CMAKE" --build "$work/proj/build" >"$work/proj.log" 2>&1 || { cat "$work/proj.log"; fail "build consumer project"; }
"$work/proj/build/with_cmake" || fail "find_package consumer (lim::lim) did not run"
"$work/proj/build/with_cmake_static" || fail "find_package consumer (lim::lim_static) did not run"
if command -v ldd >/dev/null 2>&1; then
	if ldd "$work/proj/build/with_cmake_static" | grep -q 'liblim\.so'; then
		fail "lim::lim_static consumer is linked against liblim.so"
	fi
fi

echo "test_install: PASS"
