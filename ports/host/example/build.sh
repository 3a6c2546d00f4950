#!/usr/bin/env bash
# Builds the example robot controller for the host (x86-64 Linux) against the C ABI:
#
#   liblichen static library  swift build --product LichenC (Lichen + LichenC + CRuntime objects)
#   abi_test                  Tests/CABI/abi_test.c, the C ABI's test program, linked the same way
#   controller                ports/host/example/controller.c (C11) linked with it, the Swift
#                             runtime (shared, from the toolchain), BLIS (pthread build, static),
#                             jemalloc, pthread, m, z
#
# It also checks that a C++ compiler accepts lichen.h (g++ -fsyntax-only -pedantic).
#
# Usage: ports/host/example/build.sh
# Env:   OUT          output folder (default: .build-example at the repository root)
#        CONFIG       debug or release (default: release)
#        SCRATCH      SwiftPM scratch path (default: .build)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
out=${OUT:-$root/.build-example}
config=${CONFIG:-release}
scratch=${SCRATCH:-.build}
mkdir -p "$out"

die() { echo "example/build.sh: error: $*" >&2; exit 1; }

swift_usr=$(cd "$(dirname "$(readlink -f "$(command -v swiftc)")")/.." && pwd)
multiarch=$(gcc -print-multiarch)
blis=/usr/lib/$multiarch/blis-pthread/libblis.a
[ -e "$blis" ] || die "$blis not found (run ports/host/setup)"

echo "== lichen.h under a C++ compiler"
g++ -std=c++17 -fsyntax-only -Wall -Wextra -pedantic -Werror -x c++ CRuntime/include/lichen.h \
    || die "g++ does not accept lichen.h"
printf '#include "lichen.h"\nint main(void) { return lichen_abi_version() == LICHEN_ABI_VERSION ? 0 : 1; }\n' \
    | g++ -std=c++17 -Wall -Wextra -pedantic -Werror -ICRuntime/include -x c++ -c - -o "$out/abi-check.o" \
    || die "a C++ file including lichen.h does not compile"

echo "== the static library (swift build -c $config --product LichenC)"
swift build --scratch-path "$scratch" -c "$config" --product LichenC
lib=$(swift build --scratch-path "$scratch" -c "$config" --show-bin-path)/libLichenC.a
[ -e "$lib" ] || die "$lib was not built"
cp "$lib" "$out/liblichen.a"

echo "== controller"
gcc -std=c11 -Wall -Wextra -Werror -O2 -ICRuntime/include -c ports/host/example/controller.c -o "$out/controller.o"
onone=()
[ "$config" = debug ] && onone=(-lswiftSwiftOnoneSupport)
gcc -o "$out/controller" "$swift_usr/lib/swift/linux/$(uname -m)/swiftrt.o" "$out/controller.o" "$out/liblichen.a" \
    -L"$swift_usr/lib/swift/linux" -Wl,-rpath,"$swift_usr/lib/swift/linux" -lswiftCore "${onone[@]}" \
    "$blis" -ljemalloc -lpthread -lm -lz -lstdc++ \
    || die "linking the controller failed"
echo "== the C ABI test program (Tests/CABI/abi_test.c)"
gcc -std=c11 -Wall -Wextra -Werror -O2 -ICRuntime/include -c Tests/CABI/abi_test.c -o "$out/abi_test.o"
gcc -o "$out/abi_test" "$swift_usr/lib/swift/linux/$(uname -m)/swiftrt.o" "$out/abi_test.o" "$out/liblichen.a" \
    -L"$swift_usr/lib/swift/linux" -Wl,-rpath,"$swift_usr/lib/swift/linux" -lswiftCore "${onone[@]}" \
    "$blis" -ljemalloc -lpthread -lm -lz -lstdc++ \
    || die "linking the C ABI test program failed"
echo "== a minimal C++ controller (ports/host/example/minimal.cpp)"
g++ -std=c++17 -Wall -Wextra -Werror -O2 -ICRuntime/include -c ports/host/example/minimal.cpp -o "$out/minimal.o"
g++ -o "$out/minimal" "$swift_usr/lib/swift/linux/$(uname -m)/swiftrt.o" "$out/minimal.o" "$out/liblichen.a" \
    -L"$swift_usr/lib/swift/linux" -Wl,-rpath,"$swift_usr/lib/swift/linux" -lswiftCore "${onone[@]}" \
    "$blis" -ljemalloc -lpthread -lm -lz \
    || die "linking the C++ controller failed"
"$out/minimal" models/fmnist-cnn/fmnist-cnn-q8_0.gguf tent 32 || die "the C++ controller failed"
printf '%-16s %10d bytes\n' liblichen.a "$(stat -c %s "$out/liblichen.a")" controller "$(stat -c %s "$out/controller")"
echo "example/build.sh: OK; outputs in $out"
