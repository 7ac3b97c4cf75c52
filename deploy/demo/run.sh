#!/usr/bin/env bash
# uwsgi-router's demo, on this machine's loopback: nginx (serves static files itself, passes the
# rest with uwsgi_pass) -> routerd -> three uWSGI nodes running a small Django site, each
# registered with routerd by its own router-agent.
#
#   deploy/demo/run.sh           start it, print where to look, stop it on Ctrl-C
#   deploy/demo/run.sh start     start it and return; it keeps running
#   deploy/demo/run.sh stop      stop what was started (the pids are in the state dir)
#   deploy/demo/run.sh status    which of its processes run
#
# It installs nginx, uWSGI and Django (Debian packages) when they are missing, and builds the
# binaries with `cargo build --release` unless DEMO_BIN_DIR names a directory holding them.
# Settings, from the environment (defaults in brackets):
#   DEMO_STATE_DIR     configs, logs and pids           [target/demo in the repository]
#   DEMO_HTTP_PORT     nginx                            [8080]
#   DEMO_ROUTER_PORT   routerd's uwsgi listener         [3031]
#   DEMO_KEEPALIVE_PORT nginx, proxy_pass with keep-alive to routerd's HTTP listener [8081]
#   DEMO_ROUTER_HTTP_PORT routerd's HTTP listener       [8031]
#   DEMO_CONTROL_PORT  routerd's control plane          [9032, routerctl's default]
#   DEMO_METRICS_PORT  routerd's /metrics, /readyz      [9031]
#   DEMO_NODE_PORTS    the nodes' uwsgi sockets, one node per port   ["3101 3102 3103"]
#   DEMO_STATS_PORTS   the nodes' uWSGI stats servers   ["3201 3202 3203"]
#   DEMO_BIN_DIR       directory with routerd, router-agent and routerctl (no build)
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DEMO_DIR/../.." && pwd)"
STATE="${DEMO_STATE_DIR:-$REPO/target/demo}"
HTTP_PORT="${DEMO_HTTP_PORT:-8080}"
ROUTER_PORT="${DEMO_ROUTER_PORT:-3031}"
KEEPALIVE_PORT="${DEMO_KEEPALIVE_PORT:-8081}"
ROUTER_HTTP_PORT="${DEMO_ROUTER_HTTP_PORT:-8031}"
CONTROL_PORT="${DEMO_CONTROL_PORT:-9032}"
METRICS_PORT="${DEMO_METRICS_PORT:-9031}"
read -r -a NODE_PORTS <<<"${DEMO_NODE_PORTS:-3101 3102 3103}"
read -r -a STATS_PORTS <<<"${DEMO_STATS_PORTS:-3201 3202 3203}"
CONTROL_URL="http://127.0.0.1:$CONTROL_PORT"
# Stop order: nothing new comes in, nodes drain and leave, then the rest.
STOP_ORDER=(nginx agent uwsgi routerd)

say() { printf '%s\n' "$*"; }
die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

# --- processes: each in its own session (Ctrl-C reaches only this script, which stops them in
# order), its pid and start time in $STATE/pids so `stop` signals exactly what was started.

start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

start_proc() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
  local pid=$!
  printf '%s %s\n' "$pid" "$(start_time "$pid")" >"$STATE/pids/$name"
}

# True while the process recorded as $1 runs (same pid and start time, not a zombie).
alive() {
  local file="$STATE/pids/$1" pid started state
  [ -f "$file" ] || return 1
  read -r pid started <"$file"
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $1}') || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$(start_time "$pid")" = "$started" ]
}

recorded() {
  local kind
  for kind in "$@"; do
    [ -d "$STATE/pids" ] && find "$STATE/pids" -maxdepth 1 -name "$kind*" -printf '%f\n' | sort
  done
  return 0
}

# Sends $1 to every recorded process of the kinds named after it, waits up to $2 seconds for
# them to exit, then kills what is left with its whole process group.
stop_kind() {
  local signal=$1 seconds=$2 name pid
  shift 2
  local names
  mapfile -t names < <(recorded "$@")
  for name in "${names[@]}"; do
    if alive "$name"; then
      read -r pid _ <"$STATE/pids/$name"
      kill "-$signal" "$pid" 2>/dev/null || true
    fi
  done
  local deadline=$((SECONDS + seconds))
  for name in "${names[@]}"; do
    read -r pid _ <"$STATE/pids/$name"
    while alive "$name" && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    if alive "$name"; then
      read -r pid _ <"$STATE/pids/$name"
      say "  $name did not stop within ${seconds}s: killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reaps it when it is a child of this shell (the foreground mode).
    [ -z "${pid:-}" ] || wait "$pid" 2>/dev/null || true
    rm -f "$STATE/pids/$name"
  done
}

# The command that stops this demo from any directory and shell: it names the state dir, which a
# `stop` run without it would not find.
stop_command() {
  printf 'DEMO_STATE_DIR=%q %q stop' "$STATE" "$DEMO_DIR/run.sh"
}

stop_all() {
  [ -d "$STATE/pids" ] || return 0
  say "stopping the demo ($STATE)"
  stop_kind QUIT 10 nginx
  say "  agents: draining their nodes and leaving"
  stop_kind TERM 20 agent
  stop_kind TERM 15 uwsgi
  stop_kind TERM 15 routerd
  say "demo stopped"
}

status() {
  local name any=1
  for name in $(recorded "${STOP_ORDER[@]}"); do
    any=0
    if alive "$name"; then say "$name: running"; else say "$name: not running"; fi
  done
  [ "$any" -eq 0 ] || say "not started ($STATE)"
}

# Polls `$2...` until it succeeds, at most $1 seconds, while the process $3 runs.
wait_for() {
  local seconds=$1 what=$2 proc=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$proc"; then
      say "run.sh: $proc exited while waiting for $what; its log ($STATE/logs/$proc.log):" >&2
      tail -n 20 "$STATE/logs/$proc.log" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "run.sh: no $what after ${seconds}s; see $STATE/logs/" >&2
      return 1
    fi
    sleep 0.2
  done
}

# --- what the demo needs

have_nginx() { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }
have_uwsgi_core() { command -v uwsgi >/dev/null; }
have_uwsgi_plugin_python3() { [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; }
# uWSGI's plugin embeds the system's Python: ask that one, not a python3 first on PATH.
have_python3_django() { /usr/bin/python3 -c 'import django' 2>/dev/null; }

ensure_packages() {
  local missing=()
  have_nginx || missing+=(nginx-light)
  have_uwsgi_core || missing+=(uwsgi-core)
  have_uwsgi_plugin_python3 || missing+=(uwsgi-plugin-python3)
  have_python3_django || missing+=(python3-django)
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing ${missing[*]} (Debian packages)"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "installing ${missing[*]} needs root or sudo"
    sudo=(sudo)
  fi
  # A policy-rc.d answering 101 keeps Debian from starting the system's nginx on port 80.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    "${sudo[@]}" sh -c "printf '#!/bin/sh\\nexit 101\\n' > $policy && chmod +x $policy"
    own_policy=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  [ "$own_policy" -eq 0 ] || "${sudo[@]}" rm -f "$policy"
}

ensure_binaries() {
  local b
  if [ -n "${DEMO_BIN_DIR:-}" ]; then
    BIN="$DEMO_BIN_DIR"
  else
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
    if command -v cargo >/dev/null; then
      say "building routerd, router-agent and routerctl (cargo build --release)"
      (cd "$REPO" && cargo build --release -p uwsgi-router --bins)
    fi
  fi
  for b in routerd router-agent routerctl; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: install Rust's cargo, or set DEMO_BIN_DIR"
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
  local p
  [ "${#NODE_PORTS[@]}" -eq "${#STATS_PORTS[@]}" ] ||
    die "DEMO_NODE_PORTS and DEMO_STATS_PORTS must list as many ports"
  for p in "$HTTP_PORT" "$ROUTER_PORT" "$KEEPALIVE_PORT" "$ROUTER_HTTP_PORT" "$CONTROL_PORT" "$METRICS_PORT" "${NODE_PORTS[@]}" "${STATS_PORTS[@]}"; do
    port_free "$p" || die "port $p on 127.0.0.1 is in use: choose others with the DEMO_*_PORT variables"
  done
}

# --- configuration

write_routerd_config() {
  cat >"$STATE/routerd.toml" <<EOF
# routerd for the demo (deploy/demo/run.sh writes this file; deploy/routerd.toml documents every key).
[listen]
uwsgi = ["127.0.0.1:$ROUTER_PORT"]
http = ["127.0.0.1:$ROUTER_HTTP_PORT"]

[timeouts]
shutdown_grace = "5s"

[metrics]
listen = "127.0.0.1:$METRICS_PORT"

[control]
# On loopback, the control plane runs without tokens.
listen = "127.0.0.1:$CONTROL_PORT"

# No static nodes: the agents register them.
[pools.default]
algorithm = "least-load"
allowed_networks = ["127.0.0.0/8"]
EOF
}

write_nginx_config() {
  mkdir -p "$STATE/nginx"
  {
    # Workers of a root nginx would switch to nobody, who may not read the state dir.
    [ "$(id -u)" -ne 0 ] || echo "user root;"
    cat <<EOF
daemon off;
worker_processes 1;
pid $STATE/nginx/nginx.pid;
error_log $STATE/logs/nginx-error.log notice;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    access_log $STATE/logs/nginx-access.log;
    client_body_temp_path $STATE/nginx/client_body;
    proxy_temp_path $STATE/nginx/proxy;
    fastcgi_temp_path $STATE/nginx/fastcgi;
    uwsgi_temp_path $STATE/nginx/uwsgi;
    scgi_temp_path $STATE/nginx/scgi;

    upstream uwsgi_routers {
        server 127.0.0.1:$ROUTER_PORT;
    }
    server {
        listen 127.0.0.1:$HTTP_PORT;
        # Static files: nginx answers these itself.
        location /static/ {
            alias $DEMO_DIR/static/;
        }
        # Everything else: a uwsgi packet to routerd, which picks a node.
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass uwsgi_routers;
        }
    }

    # The same site over HTTP/1.1 with keep-alive to routerd's HTTP listener: nginx keeps its
    # connections to routerd open, routerd makes the uwsgi packet.
    upstream http_routers {
        server 127.0.0.1:$ROUTER_HTTP_PORT;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$KEEPALIVE_PORT;
        location /static/ {
            alias $DEMO_DIR/static/;
        }
        location / {
            proxy_pass http://http_routers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
  } >"$STATE/nginx/nginx.conf"
}

# --- start

routerd_answers() { "$BIN/routerctl" --router "$CONTROL_URL" status; }

nodes_registered() {
  local n
  n=$("$BIN/routerctl" --router "$CONTROL_URL" nodes --json | grep -o '"source":"registered"' | wc -l)
  [ "$n" -ge "${#NODE_PORTS[@]}" ]
}

# A GET to nginx; true when it answers 200.
http_ok() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$2" >&3 &&
    head -n 1 <&3 | grep -q " 200 "' _ "$HTTP_PORT" "$1"
}

start_all() {
  local i port stats name
  mkdir -p "$STATE/logs" "$STATE/pids"
  for name in $(recorded "${STOP_ORDER[@]}"); do
    alive "$name" && die "the demo already runs in $STATE: deploy/demo/run.sh stop"
    rm -f "$STATE/pids/$name"
  done
  ensure_packages
  ensure_binaries
  check_ports
  write_routerd_config
  write_nginx_config
  local nginx
  nginx="$(command -v nginx || echo /usr/sbin/nginx)"

  say "starting routerd on 127.0.0.1:$ROUTER_PORT"
  start_proc routerd "$BIN/routerd" --config "$STATE/routerd.toml"
  wait_for 20 "answer from routerd's control plane" routerd routerd_answers

  for i in "${!NODE_PORTS[@]}"; do
    port=${NODE_PORTS[$i]}
    stats=${STATS_PORTS[$i]}
    name="node$((i + 1))"
    say "starting uWSGI $name on 127.0.0.1:$port, and its router-agent"
    start_proc "uwsgi-$name" env PYTHONDONTWRITEBYTECODE=1 uwsgi \
      --plugin python3 --master --processes 2 --die-on-term --need-app \
      --buffer-size 32768 --socket "127.0.0.1:$port" --stats "127.0.0.1:$stats" \
      --chdir "$DEMO_DIR/site" --module demosite.wsgi \
      --env "NODE_NAME=$name" --env "NODE_ID=demo-$name"
    start_proc "agent-$name" "$BIN/router-agent" --router "$CONTROL_URL" --pool default \
      --node "127.0.0.1:$port" --node-id "demo-$name" --stats "127.0.0.1:$stats" \
      --label "demo=$name" --drain-timeout 10s
  done
  wait_for 60 "registration of ${#NODE_PORTS[@]} nodes" routerd nodes_registered

  say "starting nginx on 127.0.0.1:$HTTP_PORT"
  start_proc nginx "$nginx" -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -e "$STATE/logs/nginx-error.log"
  wait_for 20 "page from nginx" nginx http_ok /echo/
}

banner() {
  local env=""
  [ "$CONTROL_PORT" = 9032 ] || env="export ROUTERCTL_ROUTER=$CONTROL_URL"
  cat <<EOF

The uwsgi-router demo is up: nginx -> routerd -> ${#NODE_PORTS[@]} uWSGI + Django nodes, each with a router-agent.

  Open        http://127.0.0.1:$HTTP_PORT/          a page naming the node that rendered it
              http://127.0.0.1:$KEEPALIVE_PORT/          the same through nginx proxy_pass (keep-alive) to routerd's HTTP listener
              http://127.0.0.1:$HTTP_PORT/echo/     the same as plain text (node=...)
              http://127.0.0.1:$HTTP_PORT/static/demo.css   served by nginx, never reaches routerd

  routerctl   export PATH="$BIN:\$PATH" ${env:+; $env}
              routerctl nodes                       the nodes, their state, load and latency
              routerctl eject demo-node1 --for 30s  node1 gets no requests for 30 s
              routerctl weight demo-node2 5         node2 takes five times its share
              routerctl top                         live view (q quits)
              routerctl drain demo-node3 --wait     node3 drains and leaves (until its uWSGI restarts)
  Spread      for i in \$(seq 30); do curl -s http://127.0.0.1:$HTTP_PORT/echo/ | head -n 1; done | sort | uniq -c
              least-load keeps an idle fleet on its fastest nodes; under concurrent load (e.g.
              hey -z 10s -c 8 http://127.0.0.1:$HTTP_PORT/slow/?ms=50) every node takes a share.
  Metrics     http://127.0.0.1:$METRICS_PORT/metrics
  Logs        $STATE/logs/
EOF
}

main() {
  case "${1:-run}" in
    stop)
      [ -n "$(recorded "${STOP_ORDER[@]}")" ] ||
        die "no demo recorded in $STATE: nothing stopped (set DEMO_STATE_DIR as it was at start)"
      stop_all
      ;;
    status)
      status
      ;;
    start | run)
      local mode=${1:-run}
      # A start that fails half-way stops what it had started.
      trap 'stop_all' EXIT
      trap 'exit 130' INT TERM
      start_all
      banner
      if [ "$mode" = start ]; then
        say "  Stop        $(stop_command)"
        trap - EXIT INT TERM
        return 0
      fi
      say "  Stop        Ctrl-C, or from another terminal: $(stop_command)"
      trap 'exit 0' INT TERM
      # Until Ctrl-C, or until every process is gone (`run.sh stop` elsewhere); the EXIT trap stops
      # whatever still runs.
      wait || true
      ;;
    -h | --help | help)
      sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      ;;
    *)
      die "unknown command ${1}: use start, stop, status or nothing (run in the foreground)"
      ;;
  esac
}

main "$@"
