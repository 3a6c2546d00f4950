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
#        QEMU_LD_PREFIX  arm64 loader prefix (default: /, the arm64 glibc of Debian's multiarch
#                        libc6:arm64; see ports/linux-aarch64/README.md)
#        LICHEN, SECONDS_TO_RUN, WORK: as ports/host/example/run.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
out=${OUT:-$root/.build-aarch64}
qemu=${QEMU:-qemu-aarch64-static}
command -v "$qemu" >/dev/null || { echo "example/run.sh: $qemu not found (run ports/host/setup)" >&2; exit 1; }
[ -x "$out/example-controller" ] || { echo "example/run.sh: $out/example-controller missing (run ports/linux-aarch64/build.sh)" >&2; exit 1; }

# The controller's control endpoint runs on a thread of its own. Check first that the guest
# can start threads: with a loader and a libc from two different glibc builds (the cross
# toolchain's ld.so under /usr/aarch64-linux-gnu and libc6:arm64's libc.so.6, which ld.so
# finds on the multiarch path) pthread_create spins and never returns.
probe_dir=$(mktemp -d /tmp/lichen-thread-probe.XXXXXX)
printf '#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; if (pthread_create(&t, 0, f, 0)) return 1; return pthread_join(t, 0); }\n' \
    > "$probe_dir/probe.c"
"${CC_AARCH64:-aarch64-linux-gnu-gcc}" -O2 "$probe_dir/probe.c" -o "$probe_dir/probe" -lpthread
if ! timeout 30 "$qemu" -L "${QEMU_LD_PREFIX:-/}" "$probe_dir/probe"; then
    rm -rf "$probe_dir"
    echo "example/run.sh: error: $qemu -L ${QEMU_LD_PREFIX:-/} cannot start a thread (pthread_create does not" \
        "return within 30 s): the loader and libc.so.6 under that prefix must come from one glibc build" >&2
    exit 1
fi
rm -rf "$probe_dir"

CONTROLLER="$out/example-controller" \
CONTROLLER_PREFIX="$qemu -L ${QEMU_LD_PREFIX:-/} -cpu ${QEMU_CPU:-cortex-a76}" \
SECONDS_TO_RUN=${SECONDS_TO_RUN:-8} \
    exec bash "$root/ports/host/example/run.sh"
