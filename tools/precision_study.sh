#!/usr/bin/env bash
# The recipe with photos in each photo precision (issue 37): test MAPE of
# `appraise cv --recipe best --recipe-photos on --photo-precision P --split-seeds ... --seed S`,
# mean over ten splits, for split seeds 0-9 and 10-19 and training seeds 42, 1, 2, 3, 4.
# Needs APPRAISE_DATASET and a release build (cargo build --release).
set -euo pipefail
bin=${APPRAISE_BIN:-target/release/appraise}
for precision in ${PRECISIONS:-f32 bf16}; do
  for block in "0,1,2,3,4,5,6,7,8,9" "10,11,12,13,14,15,16,17,18,19"; do
    mapes=()
    for seed in 42 1 2 3 4; do
      mape=$("$bin" cv --recipe best --recipe-photos on --photo-precision "$precision" \
        --split-seeds "$block" --seed "$seed" 2>/dev/null | awk '$1 == "model" {print $2; exit}')
      mapes+=("$mape")
    done
    mean=$(printf '%s\n' "${mapes[@]}" | awk '{s += $1} END {printf "%.2f", s / NR}')
    echo "$precision split seeds ${block%%,*}-${block##*,}: ${mapes[*]}: mean $mean"
  done
done
