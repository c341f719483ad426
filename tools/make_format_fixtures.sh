#!/usr/bin/env bash
# Writes tests/fixtures/formats/: a small model file of each model format (1 to 10; the
# table models of format 6 in three kinds), trained on a synthetic dataset by the build in target/release,
# and the prices that build gives a few houses with them. tests/formats.rs checks that every
# later build loads them and prices those houses the same, bit for bit.
#
# A fixture that exists is kept as it is: the release that introduces a format adds its
# fixture; no later run refreshes an existing one or its expected prices.
#   cargo build --release && tools/make_format_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/${APPRAISE_BIN:-target/release/appraise}"
OUT="$PWD/tests/fixtures/formats"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME="$WORK/cache"
mkdir -p "$OUT/photos"

# 120 synthetic houses with photos (8 zip codes); the first six are the ones priced.
"$BIN" synth --houses 120 --photos --seed 7 --out "$WORK/houses" >/dev/null
D="$WORK/houses"
{
  echo "house,bedrooms,bathrooms,area,zipcode"
  head -n 6 "$D/HousesInfo.txt" | awk '{print NR "," $1 "," $2 "," $3 "," $4}'
} >"$OUT/houses.csv"
for i in 1 2 3 4 5 6; do cp "$D/${i}"_*.jpg "$OUT/photos/"; done

# The same houses as a user's table (format 6), photo paths relative to the table.
{
  echo "house,bedrooms,bathrooms,area,zipcode,price,photo"
  awk '{print NR "," $1 "," $2 "," $3 "," $4 "," $5 ",photos/" NR "_frontal.jpg"}' "$D/HousesInfo.txt"
} >"$WORK/table.csv"
ln -s "$D" "$WORK/photos"
head -n 7 "$WORK/table.csv" | cut -d, -f1-5,7 >"$OUT/table.csv"

tiny() { # a recipe of a few small networks (no trees unless $1 says); extra JSON fields as $1
  local trees=', "trees": false'
  case "$1" in *'"trees"'*) trees='' ;; esac
  echo "{\"hidden\": [4], \"weight_decays\": [0.0001], \"folds\": 2, \"seeds_per_fold\": 1, \"max_epochs\": 20, \"patience\": 5, \"ridge_penalties\": [0.1]$trees$1}" >"$WORK/recipe.json"
}
until_format() { # version, name, then train's flags: train with seeds until the model has that format
  local version="$1" name="$2"
  shift 2
  [ -f "$OUT/$name.appraise" ] && return
  for seed in $(seq 1 40); do
    "$BIN" train --quiet --seed "$seed" --out "$WORK/$name-$seed" "$@" >/dev/null
    if [ "$(head -c 12 "$WORK/$name-$seed/model.appraise" | tail -c 4 | od -An -tu4 | tr -d ' ')" = "$version" ]; then
      cp "$WORK/$name-$seed/model.appraise" "$OUT/$name.appraise"
      return
    fi
  done
  echo "no seed gave a format $version model" >&2
  exit 1
}
train() { # name, then train's flags
  local name="$1"
  shift
  [ -f "$OUT/$name.appraise" ] && return
  "$BIN" train --quiet --seed 3 --out "$WORK/$name" "$@" >/dev/null
  cp "$WORK/$name/model.appraise" "$OUT/$name.appraise"
}
H=(--dataset "$D" --min-zip-count 1)

# Formats 1 to 5 and 7 (models of the Houses dataset's own stack) were written by releases
# before 2026-12-07; appraise now trains the Houses dataset as a table (formats 6, 8, 9), so
# their fixtures are kept as those releases wrote them and cannot be made again.
for f in format1-mlp format2-cnn format2-recipe format3-recipe format4-recipe format5-recipe format7-recipe; do
  [ -f "$OUT/$f.appraise" ] || { echo "the fixture $f.appraise is missing; restore it from git" >&2; exit 1; }
done

T=(--data "$WORK/table.csv" --identifier house --categorical zipcode)
train format6-table-mlp "${T[@]}" --ignore photo --epochs 3
tiny ''
train format6-table-recipe "${T[@]}" --ignore photo --recipe best --recipe-config "$WORK/recipe.json"
train format6-table-recipe-photos "${T[@]}" --photos photo --recipe best --recipe-photos on \
  --recipe-config "$WORK/recipe.json"
# Format 8: a table recipe's blend of networks (and ridge), per-level factors, the photo
# score, ln(v) encodings.
tiny ''
train format8-table-recipe-photos "${T[@]}" --photos photo --recipe best --recipe-photos on \
  --recipe-config "$WORK/recipe.json"
# Format 9: a table recipe whose prices are per area unit, the inner cross-validation's
# choice among candidates of both targets: train with seeds until it picks one.
tiny ', "per_area": true'
until_format 9 format9-table-recipe-area "${T[@]}" --ignore photo --area area --recipe best \
  --recipe-config "$WORK/recipe.json"

# Format 10: a table recipe blended with gradient-boosted trees, the inner cross-validation's
# choice: train with seeds until it picks them.
tiny ', "trees": true, "tree_learning_rates": [0.3], "tree_depths": [2], "monotone": ["area"]'
until_format 10 format10-table-recipe-trees "${T[@]}" --ignore photo --recipe best \
  --recipe-config "$WORK/recipe.json"

# The prices this build gives the fixtures' houses.
for model in "$OUT"/*.appraise; do
  name="$(basename "$model" .appraise)"
  [ -f "$OUT/$name.json" ] && continue
  case "$name" in
    format6-* | format8-* | format9-* | format10-*) "$BIN" predict --model "$model" --input "$OUT/table.csv" --format json ;;
    *) "$BIN" predict --model "$model" --input "$OUT/houses.csv" --photos "$OUT/photos" --format json ;;
  esac >"$OUT/$name.json"
done
ls -l "$OUT"
