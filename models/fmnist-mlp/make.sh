#!/usr/bin/env bash
# Makes the shipped fmnist-mlp models from Debian's Fashion-MNIST with Lichen's own commands.
# Run from the repository root after ports/host/setup; uses the release build of lichen.
# The same commands on the same build write the same bytes (lichen train is deterministic).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product lichen >&2
lichen=$(swift build -c release --show-bin-path)/lichen
dir=models/fmnist-mlp
"$lichen" train --data fashion-mnist --arch mlp --epochs 10 --seed 1 --out "$dir/fmnist-mlp-f32.gguf"
"$lichen" quantize --model "$dir/fmnist-mlp-f32.gguf" --type q8_0 --out "$dir/fmnist-mlp-q8_0.gguf"
"$lichen" quantize --model "$dir/fmnist-mlp-f32.gguf" --type q4_0 --out "$dir/fmnist-mlp-q4_0.gguf"
for t in f32 q8_0 q4_0; do
    "$lichen" eval --model "$dir/fmnist-mlp-$t.gguf"
    "$lichen" inspect --model "$dir/fmnist-mlp-$t.gguf" --batch 1 | grep -A4 '^step memory'
    "$lichen" inspect --model "$dir/fmnist-mlp-$t.gguf" --batch 200 | grep -A4 '^step memory'
done
