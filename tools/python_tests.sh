#!/usr/bin/env bash
# The Python package's tests: builds the wheel with maturin (crates/python), installs it in a
# virtual environment outside the project, and runs pytest. Part of the README's test
# command, after `cargo test --release` (whose binary the tests compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${APPRAISE_PY_VENV:-${TMPDIR:-/tmp}/appraise-py-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "maturin>=1.8,<2" "numpy<3" "pandas<3" "scikit-learn>=1.6,<2" "pytest<9" "tqdm<5"
# The Ray test only when asked (APPRAISE_RAY_TESTS=1): starting a local Ray takes a while.
if [ -n "${APPRAISE_RAY_TESTS:-}" ]; then
  "$venv/bin/pip" install -q "pyarrow<25" "ray[data]>=2.40,<3"
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --quiet -m crates/python/Cargo.toml --out "$wheels"
"$venv/bin/pip" install -q --force-reinstall --no-deps "$wheels"/appraise-*.whl
APPRAISE_BIN="$PWD/target/release/appraise" "$venv/bin/python" -m pytest -q crates/python/tests
