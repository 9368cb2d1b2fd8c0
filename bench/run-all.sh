#!/usr/bin/env bash
# `npm run bench`: builds, then runs every benchmark against the built agent (what production runs).
# Arguments (e.g. --quick) go to each benchmark. Needs root (network namespaces, tc, containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
export FLOTILLA_AGENT_DIST=1
npx tsx bench/run.ts "$@"
npx tsx bench/zero-copy-bench.ts
npx tsx bench/containerd-bench.ts "$@"
npx tsx bench/pod-start-bench.ts "$@"
npx tsx bench/bundle-bench.ts "$@"
npx tsx bench/p2p-bench.ts "$@"
npx tsx bench/p2p-miss-bench.ts "$@"
npx tsx bench/central-bench.ts "$@"
npx tsx bench/redirect-bench.ts "$@"
