#!/usr/bin/env bash
# Runs the aarch64 check runner (built by ports/linux-aarch64/build.sh) under qemu user-mode
# emulation, with the arm64 dynamic loader and libraries from Debian's multiarch packages,
# once per emulated CPU model:
#
#   cortex-a72  Raspberry Pi 4 class: NEON without FEAT_DotProd (the plain NEON kernels)
#   cortex-a76  Raspberry Pi 5 class: NEON with FEAT_DotProd (the SDOT kernels)
#
# so both sides of the kernels' runtime dotprod choice run. Exit status 0 only when every
# check passed on every CPU model.
#
# Usage: ports/linux-aarch64/run-tests.sh [FILTER]
#   FILTER  run only the checks whose "Suite: name" contains this text
# Env:   OUT            folder with the build outputs (default: .build-aarch64)
#        QEMU           emulator (default: qemu-aarch64-static)
#        QEMU_LD_PREFIX arm64 loader prefix (default: /, Debian's multiarch libc6:arm64)
#        QEMU_CPUS      CPU models to run on (default: "cortex-a72 cortex-a76"; see
#                       `qemu-aarch64-static -cpu help`)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${OUT:-$root/.build-aarch64}
qemu=${QEMU:-qemu-aarch64-static}
runner="$out/lichen-checks"
read -r -a cpus <<< "${QEMU_CPUS:-cortex-a72 cortex-a76}"

command -v "$qemu" >/dev/null || { echo "run-tests.sh: $qemu not found (run ports/host/setup)" >&2; exit 1; }
[ -x "$runner" ] || { echo "run-tests.sh: $runner missing (run ports/linux-aarch64/build.sh first)" >&2; exit 1; }

export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/}
ulimit -c 0   # a trapping check must not leave a qemu core file behind

status=0
summary=()
for cpu in "${cpus[@]}"; do
    echo "== $qemu -L $QEMU_LD_PREFIX -cpu $cpu $runner $*"
    start=$SECONDS
    run_status=0
    log=$(mktemp)
    set +e
    "$qemu" -L "$QEMU_LD_PREFIX" -cpu "$cpu" "$runner" "$@" | tee "$log"
    run_status=${PIPESTATUS[0]}
    set -e
    if [ "$run_status" -gt 128 ]; then
        # The runner died (a trap is SIGTRAP/SIGILL): name the check that was running, the
        # first one in run order without a PASS/FAIL line.
        crashed=$("$qemu" -L "$QEMU_LD_PREFIX" -cpu "$cpu" "$runner" --list "$@" 2>/dev/null \
            | while IFS= read -r name; do
                grep -qxF -e "PASS $name" -e "FAIL $name" <(sed -E 's/ \([0-9]+ (assertions|failures).*\)$//' "$log") \
                    || { echo "$name"; break; }
            done)
        echo "CRASH ${crashed:-(unknown check)}: the runner died with signal $((run_status - 128)) on $cpu;" \
            "the checks after it did not run"
        # The runner never printed its totals: count what it did print, the crash as a failure.
        echo "$(grep -c '^PASS ' "$log" || true) passed, $(($(grep -c '^FAIL ' "$log" || true) + 1)) failed"
    fi
    rm -f "$log"
    summary+=("$(printf '%-12s exit %d after %d s' "$cpu" "$run_status" $((SECONDS - start)))")
    [ "$run_status" -eq 0 ] || status=$run_status
done
echo "== run-tests.sh summary"
printf '   %s\n' "${summary[@]}"
exit "$status"
