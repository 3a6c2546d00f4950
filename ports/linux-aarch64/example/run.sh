#!/usr/bin/env bash
# Runs the aarch64 example controller (ports/linux-aarch64/build.sh links it from
# ports/host/example/controller.c and liblichen-c.a) under qemu-aarch64-static, and swaps LoRA
# adapters into it while it runs with the host-built `lichen` CLI over its control socket:
# ports/host/example/run.sh does the run and the checks; this script points it at the
# emulated binary.
#
# Usage: ports/linux-aarch64/example/run.sh
# Env:   OUT             the aarch64 build folder (default: .build-aarch64)
#        QEMU            emulator (default: qemu-aarch64-static)
#        QEMU_CPU        emulated CPU (default: cortex-a76)
#        QEMU_LD_PREFIX  arm64 loader prefix (default: /usr/aarch64-linux-gnu)
#        LICHEN, SECONDS_TO_RUN, WORK: as ports/host/example/run.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
out=${OUT:-$root/.build-aarch64}
qemu=${QEMU:-qemu-aarch64-static}
command -v "$qemu" >/dev/null || { echo "example/run.sh: $qemu not found (run ports/host/setup)" >&2; exit 1; }
[ -x "$out/example-controller" ] || { echo "example/run.sh: $out/example-controller missing (run ports/linux-aarch64/build.sh)" >&2; exit 1; }

CONTROLLER="$out/example-controller" \
CONTROLLER_PREFIX="$qemu -L ${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu} -cpu ${QEMU_CPU:-cortex-a76}" \
SECONDS_TO_RUN=${SECONDS_TO_RUN:-8} \
    exec bash "$root/ports/host/example/run.sh"
