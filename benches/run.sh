#!/usr/bin/env bash
# Builds routerd, router-agent and the benchmark tools in release mode, then runs every benchmark
# phase. Arguments go to the driver: `bash benches/run.sh --help`, `bash benches/run.sh --duration 3`,
# `bash benches/run.sh --only hetero` (the heterogeneous pool and the node kill only).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin routerd --bin router-agent
cargo build --release -p uwsgi-router-bench
target_dir="${CARGO_TARGET_DIR:-target}"
# 10,000 idle connections need more descriptors than the usual 1024: raise the soft limit as far
# as the hard limit allows (the driver does the same and its children inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$target_dir/release/bench" "$@"
