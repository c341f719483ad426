#!/usr/bin/env bash
# The comparables' second opinion on the Houses dataset (issue 36): for split seeds 0-9,
# train the recipe and score the median of each test house's comparables' adjusted prices
# beside the model's price (`appraise evaluate --comparables`). The test sets are the same
# size, so the mean of the splits' MAPEs is the MAPE of the test houses pooled.
# Usage: APPRAISE_DATASET=... tools/comparables_study.sh [train flags...]
set -euo pipefail
exe=${APPRAISE:-target/release/appraise}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for seed in 0 1 2 3 4 5 6 7 8 9; do
  "$exe" train --recipe best --split-seed "$seed" --out "$out/$seed" --quiet "$@" > /dev/null
  "$exe" evaluate --model "$out/$seed/model.appraise" --comparables --json > "$out/$seed.json"
  python3 -c "
import json,sys
r=json.load(open('$out/$seed.json'))
print($seed, round(r['mape'],2), round(r['comparables']['mape'],2), round(r['median_ape'],2), round(r['comparables']['median_ape'],2))"
done | tee "$out/all.txt"
python3 -c "
rows=[l.split() for l in open('$out/all.txt')]
n=len(rows)
print('pooled: model MAPE %.2f%%, comparables MAPE %.2f%%; median APE (mean over splits) model %.2f%%, comparables %.2f%%' % tuple(sum(float(r[i]) for r in rows)/n for i in (1,2,3,4)))"
