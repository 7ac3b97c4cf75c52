#!/usr/bin/env bash
# The project's test command. Installs the system packages the tests need (nginx, uWSGI with its
# python3 plugin, Django, Prometheus, tmux for the terminal UI test, openssl for TLS certificates,
# the benchmark tools, and for the deploy/ tests systemd-analyze, iproute2 and kubernetes-validate)
# when any is missing, then
# checks formatting, lints, runs every test of the workspace, and fuzzes each target of fuzz/
# for a short while (installing cargo-fuzz when it is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

banner() { printf '\n=== %s ===\n' "$*"; }

# Each Debian package and how to tell that what it provides is already there, so a prepared
# machine (or one with `nginx` instead of `nginx-light`) never touches apt.
have_nginx() { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }
have_uwsgi_core() { command -v uwsgi >/dev/null; }
have_uwsgi_plugin_python3() { [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; }
# uWSGI's plugin embeds the system Python, so ask that one, not a python3 first on PATH.
have_python3_django() { /usr/bin/python3 -c 'import django' 2>/dev/null; }
have_prometheus() { command -v prometheus >/dev/null; }
have_hey() { command -v hey >/dev/null; }
have_tmux() { command -v tmux >/dev/null; }
have_openssl() { command -v openssl >/dev/null; }
# deploy/ tests: systemd-analyze verify of the units (whose ExecStartPost uses curl), network
# namespaces for the multi-host test, and a venv for kubernetes-validate (the manifests' schemas).
have_systemd() { command -v systemd-analyze >/dev/null; }
have_curl() { [ -x /usr/bin/curl ]; }
have_iproute2() { command -v ip >/dev/null || [ -x /usr/sbin/ip ]; }
have_python3_venv() { /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; }
# tests/manuals.rs renders the generated manual pages with `man -l`.
have_man() { command -v man >/dev/null; }

missing_packages() {
  have_nginx || echo nginx-light
  have_uwsgi_core || echo uwsgi-core
  have_uwsgi_plugin_python3 || echo uwsgi-plugin-python3
  have_python3_django || echo python3-django
  have_prometheus || echo prometheus
  have_hey || echo hey
  have_tmux || echo tmux
  have_openssl || echo openssl
  have_systemd || echo systemd
  have_curl || echo curl
  have_iproute2 || echo iproute2
  have_python3_venv || echo python3-venv
  have_man || echo man-db
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "run.sh: installing packages needs root (or sudo): $*" >&2
    exit 1
  fi
}

# Debian's postinst scripts start services (nginx on port 80); a policy-rc.d that answers 101
# forbids that for the length of the install. An existing policy is left as it is.
POLICY=/usr/sbin/policy-rc.d
install_packages() {
  local own_policy=0
  if [ ! -e "$POLICY" ]; then
    as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' > $POLICY && chmod +x $POLICY"
    own_policy=1
    trap 'as_root rm -f "$POLICY"' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
  if [ "$own_policy" -eq 1 ]; then
    as_root rm -f "$POLICY"
    trap - EXIT
  fi
}

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
  banner "installing ${missing[*]}"
  install_packages "${missing[@]}"
fi

# kubernetes-validate (PyPI) checks deploy/kubernetes/ against the Kubernetes schemas it bundles;
# it lives in a venv under target/, made once. tests/deploy_kubernetes.rs finds it here.
TEST_TOOLS="${CARGO_TARGET_DIR:-target}/test-tools"
if [ ! -x "$TEST_TOOLS/bin/kubernetes-validate" ]; then
  banner "installing kubernetes-validate into $TEST_TOOLS"
  /usr/bin/python3 -m venv "$TEST_TOOLS"
  "$TEST_TOOLS/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
export KUBERNETES_VALIDATE="$PWD/$TEST_TOOLS/bin/kubernetes-validate"
[[ "$TEST_TOOLS" != /* ]] || export KUBERNETES_VALIDATE="$TEST_TOOLS/bin/kubernetes-validate"

# A full run builds every test binary once: incremental state would only double the disk it
# takes (CI machines can be short of disk). Free space is printed so a full disk is plain to see.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk() { df -h --output=avail,target "${CARGO_TARGET_DIR:-target}" 2>/dev/null | tail -n 1 || true; }
mkdir -p "${CARGO_TARGET_DIR:-target}"
echo "disk free before the build: $(disk)"

locked=()
if [ -f Cargo.lock ]; then
  locked=(--locked)
fi

banner "cargo fmt --check"
cargo fmt --all -- --check

banner "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets "${locked[@]}" -- -D warnings

banner "cargo test (unit, integration, real nginx + routerd + uWSGI + Django stack)"
cargo test --workspace --all-targets "${locked[@]}"
echo "disk free after the tests: $(disk)"

# Fuzzing: fuzz/ holds cargo-fuzz targets for what the network sends (uwsgi packets, subscription
# datagrams, their signatures), in a workspace of its own. Each target runs FUZZ_SECONDS from the
# seeds in fuzz/corpus/ (what it finds goes to fuzz/target/corpus/, not into the repo); a crash,
# or an input running past 10 s, fails the run and leaves the input in fuzz/artifacts/TARGET/.
# cargo-fuzz passes nightly flags, which RUSTC_BOOTSTRAP lets the stable toolchain take. A debug
# build of cargo-fuzz installs in half the time and drives the build just as well; --dev and no
# sanitizer keep the cold build of the router's dependencies short (fuzz/Cargo.toml optimises
# the code the targets run; the router forbids unsafe code, so ASan has little to find).
have_cargo_fuzz() { cargo fuzz --version >/dev/null 2>&1; }
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
fuzz_started=$SECONDS
if ! have_cargo_fuzz; then
  banner "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --debug
fi
fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fuzz_build=(--dev --sanitizer none)

banner "cargo fuzz build (fuzz/, its own workspace and Cargo.lock)"
"${fuzz[@]}" build "${fuzz_build[@]}"
# Not --locked: a dependency added to the router must not break this step. Say so instead.
if [ -n "$(git status --porcelain -- fuzz/Cargo.lock 2>/dev/null)" ]; then
  echo "run.sh: fuzz/Cargo.lock was behind the router's dependencies and is updated: commit it" >&2
fi

fuzz_targets=$("${fuzz[@]}" list)
for target in $fuzz_targets; do
  banner "cargo fuzz run $target (${FUZZ_SECONDS}s)"
  found="fuzz/target/corpus/$target"
  log="fuzz/target/$target.log"
  mkdir -p "$found"
  if ! "${fuzz[@]}" run "${fuzz_build[@]}" "$target" "$found" "fuzz/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 >"$log" 2>&1; then
    tail -n 80 "$log"
    echo "run.sh: fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || tail -n 3 "$log"
done
echo "fuzzing took $((SECONDS - fuzz_started))s"

banner "all checks passed"
