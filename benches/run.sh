#!/usr/bin/env bash
# Builds routerd, router-agent and the benchmark tools in release mode, then runs every benchmark
# phase. Arguments go to the driver: `bash benches/run.sh --help`, `bash benches/run.sh --duration 3`,
# `bash benches/run.sh --only hetero` (the heterogeneous pool and the node kill only),
# `bash benches/run.sh --only front` (nginx in front of routerd's HTTP listener and the others).
# `bash benches/run.sh --only scale` (the control plane with thousands of simulated agents).
set -euo pipefail
cd "$(dirname "$0")/.."
# The front group needs HAProxy: install Debian's package where it is missing and the group will
# run (no --only, or an --only naming a front phase).
wants_front() {
  case " $* " in
    *" --only "* | *" --only="*) [[ " $* " == *front* ]] ;;
    *) true ;;
  esac
}
if wants_front "$@" && ! command -v haproxy >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get install -y haproxy
  else
    echo "run.sh: the front group needs HAProxy (Debian: apt-get install haproxy)" >&2
  fi
fi
cargo build --release --bin routerd --bin router-agent
cargo build --release -p uwsgi-router-bench
target_dir="${CARGO_TARGET_DIR:-target}"
# 10,000 idle connections need more descriptors than the usual 1024: raise the soft limit as far
# as the hard limit allows (the driver does the same and its children inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$target_dir/release/bench" "$@"
