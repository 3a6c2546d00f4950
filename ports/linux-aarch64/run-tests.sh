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
#        QEMU_LD_PREFIX arm64 loader prefix (default: /usr/aarch64-linux-gnu)
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

export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}

status=0
summary=()
for cpu in "${cpus[@]}"; do
    echo "== $qemu -L $QEMU_LD_PREFIX -cpu $cpu $runner $*"
    start=$SECONDS
    run_status=0
    "$qemu" -L "$QEMU_LD_PREFIX" -cpu "$cpu" "$runner" "$@" || run_status=$?
    summary+=("$(printf '%-12s exit %d after %d s' "$cpu" "$run_status" $((SECONDS - start)))")
    [ "$run_status" -eq 0 ] || status=$run_status
done
echo "== run-tests.sh summary"
printf '   %s\n' "${summary[@]}"
exit "$status"
