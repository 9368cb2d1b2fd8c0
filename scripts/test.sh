#!/usr/bin/env bash
# Runs every check: lint, typecheck, unit tests, end-to-end tests (real containerd, Distribution, skopeo).
# Usage: scripts/test.sh [unit|e2e|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
shopt -s globstar nullglob

if [ "$what" = all ] || [ "$what" = e2e ]; then
  bash scripts/install-test-deps.sh
fi
if [ "$what" = all ]; then
  echo "== lint"; npx eslint .
  echo "== typecheck"; npx tsc --noEmit
fi
files=()
if [ "$what" = all ] || [ "$what" = unit ]; then files+=(test/unit/**/*.test.ts); fi
if [ "$what" = all ] || [ "$what" = e2e ]; then files+=(test/e2e/**/*.test.ts); fi
echo "== tests (${#files[@]} files)"
# One file at a time: end-to-end tests start real daemons and the machine has two cores.
exec node --import tsx --test --test-concurrency=1 --test-timeout=300000 --test-reporter=spec "${files[@]}"
