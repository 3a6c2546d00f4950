#!/usr/bin/env bash
# Runs the example controller (built by ports/host/example/build.sh, or the aarch64 one under
# qemu when CONTROLLER_PREFIX says so) for a few seconds at 200 Hz over a small stream of the
# shipped fmnist-cnn (Q8_0), and swaps LoRA adapters into it with the host's `lichen` CLI while
# it runs: load, swap, scale, list, unload, status. Fails unless the controller ran, printed
# its per-second stats, finished cleanly, and the loop picked the swaps up.
#
# Usage: ports/host/example/run.sh
# Env:   CONTROLLER         the controller binary (default: .build-example/controller)
#        CONTROLLER_PREFIX  a command to run it under (e.g. "qemu-aarch64-static -L /usr/aarch64-linux-gnu")
#        LICHEN             the host CLI (default: .build/debug/lichen, built if missing)
#        SECONDS_TO_RUN     how long the controller runs (default 6)
#        WORK               scratch folder (default: a new temporary one)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
controller=${CONTROLLER:-$root/.build-example/controller}
lichen=${LICHEN:-$root/.build/debug/lichen}
seconds=${SECONDS_TO_RUN:-6}
work=${WORK:-$(mktemp -d /tmp/lichen-example.XXXXXX)}
model=models/fmnist-cnn/fmnist-cnn-q8_0.gguf

die() { echo "example/run.sh: error: $*" >&2; exit 1; }
[ -x "$controller" ] || die "$controller missing (build it first)"
if [ ! -x "$lichen" ]; then
    swift build --product lichen >/dev/null || die "cannot build the lichen CLI"
fi

echo "== inputs: a 300-frame stream (gaussian_noise, clean) and two adapters trained by lichen train --lora"
"$lichen" stream make --kind custom --domains gaussian_noise:3,clean --per-domain 150 --seed 7 --out "$work/s.stream" >/dev/null
for domain in gaussian_noise glass_blur; do
    [ -e "$work/$domain.gguf" ] || "$lichen" train --lora --base "$model" --corruption "$domain" --severity 3 \
        --targets fc1,fc2 --rank 2 --epochs 1 --limit 256 --test-limit 50 --batch 32 --out "$work/$domain.gguf" >/dev/null 2>>"$work/train.log" \
        || die "lichen train --lora ($domain) failed"
done

socket="$work/controller.sock"
echo "== controller: ${CONTROLLER_PREFIX:-} $controller (200 Hz, ${seconds} s)"
# Bounded: the run ends by itself after --seconds; `timeout` guards against a hang.
# shellcheck disable=SC2086
timeout $((seconds + 300)) ${CONTROLLER_PREFIX:-} "$controller" --model "$model" --stream "$work/s.stream" --socket "$socket" \
    --rate 200 --seconds "$seconds" --method bn --window 4 --every 4 >"$work/out.txt" 2>"$work/err.txt" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { cat "$work/err.txt" >&2; die "the controller did not open its socket"; }
[ "$(stat -c %a "$socket")" = 600 ] || die "the socket is not owner-only: $(stat -c %a "$socket")"
# Wait (at most about 4 minutes) for the model to be loaded before changing adapters.
loaded=0
for _ in $(seq 1 240); do
    if "$lichen" adapters status --socket "$socket" --timeout-ms 1000 --json 2>/dev/null | grep -q '"model_loaded": true'; then
        loaded=1
        break
    fi
    sleep 1
done
[ "$loaded" = 1 ] || { cat "$work/err.txt" >&2; die "the controller did not load its model within 4 minutes"; }

echo "== lichen adapters, while it runs"
"$lichen" adapters load "$work/gaussian_noise.gguf" --socket "$socket"
sleep 0.5
"$lichen" adapters swap "$work/glass_blur.gguf:0.5" "$work/gaussian_noise.gguf" --socket "$socket"
sleep 0.5
"$lichen" adapters scale glass_blur 2 --socket "$socket" >/dev/null
"$lichen" adapters unload gaussian_noise --socket "$socket" >/dev/null
"$lichen" adapters list --socket "$socket"
if "$lichen" adapters load "$work/missing.gguf" --socket "$socket" 2>"$work/refused.txt"; then
    die "a missing adapter file was accepted"
fi
echo "refused as expected: $(cat "$work/refused.txt")"
sleep 0.5
"$lichen" adapters status --socket "$socket"

wait "$pid" || { cat "$work/err.txt" >&2; die "the controller failed"; }
trap - EXIT
cat "$work/out.txt"
grep -q '^t=1s ' "$work/out.txt" || die "no per-second stats"
done_line=$(grep '^done: ' "$work/out.txt" | tail -1) || die "no summary line"
swaps=$(echo "$done_line" | sed -E 's/.* swaps=([0-9]+).*/\1/')
active=$(echo "$done_line" | sed -E 's/.* active_adapters=([0-9]+).*/\1/')
[ "$swaps" -ge 2 ] || die "the loop picked up $swaps adapter sets (expected at least 2)"
[ "$active" -eq 1 ] || die "$active adapters active at the end (expected 1)"

# CoTTA and RMT through the same C ABI: their source data comes from a source pack the runtime
# reads into its budget (CoTTA derives its threshold from it; RMT its prototypes, warm-up and replay).
echo "== a source pack, then CoTTA and RMT in the controller"
"$lichen" source-pack --model "$model" --frames 256 --out "$work/pack.stream" || die "lichen source-pack failed"
for method in cotta rmt; do
    # shellcheck disable=SC2086
    timeout 600 ${CONTROLLER_PREFIX:-} "$controller" --model "$model" --stream "$work/s.stream" --socket "$work/$method.sock" \
        --rate 200 --frames 64 --method "$method" --window 8 --every 8 --source-pack "$work/pack.stream" --guard 1.5 \
        >"$work/$method.txt" 2>"$work/$method.err" || { cat "$work/$method.err" >&2; die "the controller failed with $method"; }
    line=$(grep '^done: ' "$work/$method.txt" | tail -1) || die "$method: no summary line"
    echo "$method: $line"
    updates=$(echo "$line" | sed -E 's/.* updates=([0-9]+).*/\1/')
    [ "$updates" -eq 8 ] || die "$method made $updates updates over 64 frames with window 8, every 8 (expected 8)"
done
echo "example/run.sh: OK (swaps picked up: $swaps; cotta and rmt adapted)"
