#!/usr/bin/env bash
# The GPU path on a machine without a GPU: a `--features wgpu` build on Mesa's lavapipe (a
# software Vulkan; slow, but real). Part 1 for 5 epochs must print the same mean as the CPU
# build, and Part 2's CNN must train. Not run by CI (a second full build).
#   tools/gpu_check.sh            (needs apt for mesa-vulkan-drivers, or it installed)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wgpu}"
cargo build --release --features wgpu
GPU="$CARGO_TARGET_DIR/release/appraise"
CPU=target/release/appraise
[ -x "$CPU" ] || cargo build --release
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
cpu=$("$CPU" train --epochs 5 --quiet --out "$OUT/cpu" | grep -o 'mean: [0-9.]*%')
gpu=$("$GPU" train --epochs 5 --quiet --device wgpu --out "$OUT/gpu" | grep -o 'mean: [0-9.]*%')
echo "cpu:  $cpu"
echo "wgpu: $gpu"
[ "$cpu" = "$gpu" ] || { echo "the wgpu build's Part 1 differs from the CPU build's" >&2; exit 1; }
"$GPU" train --model cnn --epochs 1 --quiet --device wgpu --out "$OUT/cnn"
echo "wgpu: Part 2's CNN trained one epoch"
