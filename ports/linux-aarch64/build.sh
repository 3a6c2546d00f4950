#!/usr/bin/env bash
# Cross-builds Lichen for 64-bit Arm Linux (aarch64, glibc) from an x86-64 Debian machine:
#
#   liblichen-cruntime.a  CRuntime/src/**/*.c with aarch64-linux-gnu-gcc
#   liblichen.a           Sources/Lichen as Embedded Swift (aarch64-none-none-elf, PIC)
#                         + Lichen.swiftmodule, the interface robot binaries import
#   liblichen-checks.a    Tests/LichenChecks, the same way, importing that module
#   lichen-checks         ports/linux-aarch64/runner linked against all of the above,
#                         arm64 glibc (dynamic), BLIS (pthread build, static) and jemalloc
#   lichen-checks.map     linker map;  size.txt  sizes of the libraries and the runner
#   liblichen-abi.a       Sources/LichenC (the C ABI's @_cdecl exports) as Embedded Swift
#   liblichen-c.a         the one static library a robot binary links with lichen.h: the
#                         objects of liblichen.a, liblichen-abi.a and liblichen-cruntime.a
#   example-controller    ports/host/example/controller.c linked against liblichen-c.a
#   abi-test              Tests/CABI/abi_test.c (the C ABI's test program), linked the same way
#                         (ports/linux-aarch64/example/run.sh runs it under qemu)
#
# The flags come from ports/linux-aarch64/toolset.json (the one place they are written down).
# Sources are found by globbing, so new files need no change here.
#
# Usage: ports/linux-aarch64/build.sh
# Env:   OUT      output folder (default: .build-aarch64 at the repository root)
#        TOOLSET  flags file (default: ports/linux-aarch64/toolset.json)
#        SWIFTC   Swift compiler (default: swiftc on PATH)
#        DISASM=1 also write a demangled disassembly of the runner (lichen-checks.dis)
#        CLEAN=1  rebuild everything (default: only what is older than its inputs)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
port=ports/linux-aarch64
toolset=${TOOLSET:-$port/toolset.json}
out=${OUT:-$root/.build-aarch64}
swiftc=${SWIFTC:-swiftc}

die() { echo "build.sh: error: $*" >&2; exit 1; }
step_start=0
step() { step_start=$SECONDS; echo "== $*"; }
step_done() { echo "   done in $((SECONDS - step_start)) s"; }

command -v "$swiftc" >/dev/null || die "$swiftc not found (the Swift toolchain must be on PATH)"

# The toolchain's usr/ folder; toolset.json names files under /opt/swift/usr, the path
# this repository's machines use, and that prefix is rewritten if swiftc lives elsewhere.
swift_usr=$(cd "$(dirname "$(readlink -f "$(command -v "$swiftc")")")/.." && pwd)

# toolset_options SECTION: the extraCLIOptions of one section of toolset.json, one per line.
toolset_options() {
    local section=$1
    if command -v jq >/dev/null; then
        jq -r --arg s "$section" '.[$s].extraCLIOptions[]' "$toolset"
    else
        python3 -c 'import json, sys
for o in json.load(open(sys.argv[1]))[sys.argv[2]]["extraCLIOptions"]: print(o)' "$toolset" "$section"
    fi | sed "s|^/opt/swift/usr/|$swift_usr/|"
}
toolset_path() {
    if command -v jq >/dev/null; then
        jq -r --arg s "$1" '.[$s].path' "$toolset"
    else
        python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["path"])' "$toolset" "$1"
    fi
}

mapfile -t swift_flags < <(toolset_options swiftCompiler)
mapfile -t c_flags < <(toolset_options cCompiler)
mapfile -t link_flags < <(toolset_options linker)
cc=$(toolset_path cCompiler)
ld=$(toolset_path linker)
ar=${cc%gcc}ar
size=${cc%gcc}size
readelf=${cc%gcc}readelf
for tool in "$cc" "$ld" "$ar" "$size" "$readelf"; do
    command -v "$tool" >/dev/null || die "$tool not found (run ports/host/setup)"
done
for flag in "${link_flags[@]}"; do
    case $flag in
        /*) [ -e "$flag" ] || die "$flag not found (run ports/host/setup)" ;;
    esac
done

# Incremental: an object is rebuilt only when it is missing or older than its inputs (its
# sources, the C headers, the module it imports, toolset.json or this script), so a one-file
# change rebuilds that file's object (C) or that file's module (Swift compiles whole modules).
# CLEAN=1 starts from an empty folder.
[ "${CLEAN:-0}" = 1 ] && rm -rf "$out"
mkdir -p "$out/cruntime" "$out/swift"
total_start=$SECONDS
toolset_file=$toolset
# stale OBJ INPUT...: true when OBJ is missing or any INPUT (file, or folder searched for
# .c/.h/.swift files) is newer.
stale() {
    local obj=$1
    shift
    [ -e "$obj" ] || return 0
    [ -n "$(find "$@" "$toolset_file" "$root/ports/linux-aarch64/build.sh" -newer "$obj" \
        \( -name '*.c' -o -name '*.h' -o -name '*.swift' -o -name '*.json' -o -name '*.sh' -o -name '*.o' \) -print -quit 2>/dev/null)" ]
}

# ---- (a) CRuntime ------------------------------------------------------------------------
step "CRuntime (C11, $cc)"
mapfile -t c_sources < <(find CRuntime/src -name '*.c' -type f | LC_ALL=C sort)
[ ${#c_sources[@]} -gt 0 ] || die "no C sources under CRuntime/src"
mapfile -t c_headers < <(find CRuntime/include CRuntime/src -name '*.h' -type f)
c_objects=()
compiled=0
for src in "${c_sources[@]}"; do
    obj="$out/cruntime/$(echo "${src#CRuntime/src/}" | tr / _).o"
    if stale "$obj" "$src" "${c_headers[@]}"; then
        # -I CRuntime/src lets internal headers be included by their path below src/.
        "$cc" "${c_flags[@]}" -I CRuntime/include -I CRuntime/src -c "$src" -o "$obj" \
            || die "compiling $src for aarch64 failed"
        compiled=$((compiled + 1))
    fi
    c_objects+=("$obj")
done
rm -f "$out/liblichen-cruntime.a"
"$ar" rcs "$out/liblichen-cruntime.a" "${c_objects[@]}"
echo "   ${#c_sources[@]} C files ($compiled compiled) -> liblichen-cruntime.a"
step_done

# ---- (b), (c) Swift modules --------------------------------------------------------------
# swift_module NAME DIR: compiles every .swift file under DIR into lib<name>.a and
# NAME.swiftmodule in $out/swift.
swift_module() {
    local name=$1 dir=$2 lib=$3
    shift 3
    local sources
    mapfile -t sources < <(find "$dir" -name '*.swift' -type f | LC_ALL=C sort)
    [ ${#sources[@]} -gt 0 ] || die "no Swift sources under $dir"
    # Inputs: its sources, the C headers, and the objects of the modules it imports ($@).
    if ! stale "$out/swift/$name.o" "$dir" CRuntime/include "$@"; then
        echo "   ${#sources[@]} Swift files: up to date"
        return
    fi
    "$swiftc" "${swift_flags[@]}" -module-name "$name" -I CRuntime/include -I "$out/swift" \
        -emit-module -emit-module-path "$out/swift/$name.swiftmodule" \
        -c "${sources[@]}" -o "$out/swift/$name.o" \
        || die "$name ($dir) does not compile as Embedded Swift for aarch64"
    "$ar" rcs "$out/$lib" "$out/swift/$name.o"
    echo "   ${#sources[@]} Swift files -> $lib, $name.swiftmodule"
}

step "Lichen (Embedded Swift, aarch64-none-none-elf, PIC)"
swift_module Lichen Sources/Lichen liblichen.a
step_done

step "LichenChecks (Embedded Swift)"
swift_module LichenChecks Tests/LichenChecks liblichen-checks.a "$out/swift/Lichen.o"
step_done

step "LichenC, the C ABI (Embedded Swift)"
swift_module LichenC Sources/LichenC liblichen-abi.a "$out/swift/Lichen.o"
step_done

# ---- (d) the runner ----------------------------------------------------------------------
step "runner (Embedded Swift) and link ($ld, dynamic glibc)"
runner_flags=()
# Unbuffered output through the OS shim when CRuntime has it; print() (stdio) otherwise.
if grep -q 'lcr_os_write_stdout' CRuntime/include/lcr_os.h; then
    runner_flags+=(-D LICHEN_RUNNER_OS_WRITE)
fi
mapfile -t runner_sources < <(find "$port/runner" -name '*.swift' -type f | LC_ALL=C sort)
"$swiftc" "${swift_flags[@]}" "${runner_flags[@]}" -module-name LichenRunner \
    -I CRuntime/include -I "$out/swift" \
    -c "${runner_sources[@]}" -o "$out/swift/LichenRunner.o" \
    || die "the runner does not compile"
"$ld" -o "$out/lichen-checks" "$out/swift/LichenRunner.o" \
    -Wl,--start-group "$out/liblichen-checks.a" "$out/liblichen.a" "$out/liblichen-cruntime.a" -Wl,--end-group \
    "${link_flags[@]}" \
    -Wl,-Map="$out/lichen-checks.map" \
    || die "linking the runner failed"
step_done

# ---- (e) the C library and the example controller -----------------------------------------
step "liblichen-c.a and the example controller ($cc, lichen.h)"
rm -f "$out/liblichen-c.a"
"$ar" rcs "$out/liblichen-c.a" "$out/swift/Lichen.o" "$out/swift/LichenC.o" "${c_objects[@]}"
"$cc" "${c_flags[@]}" -Wextra -Werror -I CRuntime/include -c ports/host/example/controller.c -o "$out/controller.o" \
    || die "compiling the example controller failed"
"$ld" -o "$out/example-controller" "$out/controller.o" "$out/liblichen-c.a" "${link_flags[@]}" \
    -Wl,-Map="$out/example-controller.map" \
    || die "linking the example controller failed"
"$cc" "${c_flags[@]}" -Wextra -Werror -I CRuntime/include -c Tests/CABI/abi_test.c -o "$out/abi_test.o" \
    || die "compiling the C ABI test program failed"
"$ld" -o "$out/abi-test" "$out/abi_test.o" "$out/liblichen-c.a" "${link_flags[@]}" \
    || die "linking the C ABI test program failed"
# A C++ control program: the same library, linked by the C++ driver.
cxx=${cc%gcc}g++
command -v "$cxx" >/dev/null || die "$cxx not found (run ports/host/setup)"
"$cxx" -O2 -std=c++17 -fPIC -Wall -Wextra -Werror -I CRuntime/include -c ports/host/example/minimal.cpp -o "$out/minimal.o" \
    || die "compiling the C++ controller failed"
"$cxx" -o "$out/minimal" "$out/minimal.o" "$out/liblichen-c.a" "${link_flags[@]}" \
    || die "linking the C++ controller failed"
step_done

# ---- size summary ------------------------------------------------------------------------
{
    echo "# Lichen linux-aarch64 build, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# swiftc: $("$swiftc" --version 2>&1 | head -1)"
    echo "# cc:     $("$cc" --version | head -1)"
    echo
    echo "## file sizes (bytes)"
    for f in liblichen-cruntime.a liblichen.a liblichen-checks.a liblichen-abi.a liblichen-c.a lichen-checks example-controller; do
        printf '%-24s %10d\n' "$f" "$(stat -c %s "$out/$f")"
    done
    echo
    echo "## sections (text/data/bss, bytes; static libraries summed over members)"
    for f in liblichen-cruntime.a liblichen.a liblichen-checks.a liblichen-abi.a liblichen-c.a; do
        "$size" -t "$out/$f" | tail -1 | awk -v n="$f" '{printf "%-24s text %9d  data %7d  bss %7d\n", n, $1, $2, $3}'
    done
    "$size" "$out/lichen-checks" | tail -1 | awk '{printf "%-24s text %9d  data %7d  bss %7d\n", "lichen-checks", $1, $2, $3}'
    "$size" "$out/example-controller" | tail -1 | awk '{printf "%-24s text %9d  data %7d  bss %7d\n", "example-controller", $1, $2, $3}'
    echo
    echo "## dynamic dependencies of lichen-checks"
    "$readelf" -d "$out/lichen-checks" | awk '/NEEDED/ {print $NF}' | tr -d '[]'
} > "$out/size.txt"
cat "$out/size.txt"

if [ "${DISASM:-0}" = 1 ]; then
    "${cc%gcc}objdump" -d "$out/lichen-checks" | "$swift_usr/bin/swift-demangle" --simplified > "$out/lichen-checks.dis"
    echo "disassembly: $out/lichen-checks.dis"
fi

echo "build.sh: OK in $((SECONDS - total_start)) s; outputs in $out"
