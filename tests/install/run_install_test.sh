#!/usr/bin/env bash
# The install test (CTest "install_consumer"): installs the current build into a temporary
# prefix, builds the consumer project in this folder against it through find_package(openna),
# then through pkg-config (C and C++), runs every program, and checks that the README's usage
# examples are these very files.  Usage: run_install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 work=$3
here=$src/tests/install
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

step() { echo "== $*"; }

step "README examples are tests/install/consumer.c and consumer.cpp"
# The first ```c block and the first ```cpp block of the README.
awk '/^```c$/ && !done {f=1; next} f && /^```$/ {f=0; done=1} f' "$src/README.md" >"$work/readme.c"
awk '/^```cpp$/ && !done {f=1; next} f && /^```$/ {f=0; done=1} f' "$src/README.md" >"$work/readme.cpp"
diff -u "$here/consumer.c" "$work/readme.c"
diff -u "$here/consumer.cpp" "$work/readme.cpp"

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
test -f "$prefix/include/openna/openna.h"
test -f "$prefix/include/openna/openna.hpp"
test -f "$prefix/include/openna/openna_export.h"
pc=$(find "$prefix" -name openna.pc | head -n 1)
test -n "$pc"
libdir=$(dirname "$(dirname "$pc")")
ls "$libdir"/libopenna.so.* >/dev/null

step "find_package(openna) consumer"
cmake -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  >"$work/consumer-configure.log" || { cat "$work/consumer-configure.log"; exit 1; }
cmake --build "$work/consumer" || exit 1
"$work/consumer/consumer_c"
"$work/consumer/consumer_cpp"

step "pkg-config consumer"
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg-config --modversion openna
cflags=$(pkg-config --cflags openna)
libs=$(pkg-config --libs openna)
echo "cflags: $cflags"
echo "libs:   $libs"
# shellcheck disable=SC2086  # the flags are meant to split
cc -std=c99 -Wall -Wextra -Werror -pedantic "$here/consumer.c" $cflags $libs -lm -o "$work/c_pc"
# shellcheck disable=SC2086
c++ -std=c++17 -Wall -Wextra -Werror "$here/consumer.cpp" $cflags $libs -o "$work/cpp_pc"
LD_LIBRARY_PATH=$libdir "$work/c_pc"
LD_LIBRARY_PATH=$libdir "$work/cpp_pc"
step "ok"
