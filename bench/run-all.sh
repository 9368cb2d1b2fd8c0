#!/usr/bin/env bash
# `npm run bench`: builds, then runs every benchmark against the built agent (what production runs).
# Arguments (e.g. --quick) go to each benchmark. Needs root (network namespaces, tc, containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
export FLOTILLA_AGENT_DIST=1
# A bench that fails does not stop the others; the run exits non-zero at the end, naming it.
failed=()
run() { npx tsx "$@" || failed+=("$1"); }
# The latency benches start on a quiet machine, not in the load the bench before them left: waits (2 min at
# most) for the 1-minute load average to fall under 1.5; each bench's file records the load it started at.
quiet() {
  for _ in $(seq 1 60); do
    awk '{ exit !($1 < 1.5) }' /proc/loadavg && return 0
    sleep 2
  done
  echo "bench: load average still $(cut -d' ' -f1 /proc/loadavg) after 2 min; going on" >&2
}
run bench/run.ts "$@"
run bench/zero-copy-bench.ts
run bench/containerd-bench.ts "$@"
quiet
run bench/pod-start-bench.ts "$@"
run bench/bundle-bench.ts "$@"
run bench/p2p-bench.ts "$@"
quiet
run bench/p2p-miss-bench.ts "$@"
run bench/central-bench.ts "$@"
run bench/redirect-bench.ts "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
