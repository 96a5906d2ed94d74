#!/usr/bin/env bash
# Idle keep-alive memory, realip proxy vs nginx, on loopback.
#
# For each N in IDLE_COUNTS (default "3000 8000"): open N client
# connections to the proxy, send one request on each (proxied to the same
# upstream, an nginx `return 200` with a 1 KiB body), read every response,
# keep the connections open and idle, then close them all. RSS (VmRSS,
# summed over every process: realip is one process, nginx is its master
# plus all workers) is sampled before, while the N connections are idle,
# and after they closed. Prints KiB per idle connection and the RSS after
# close as a percentage of the RSS before.
#
# Both proxies run with their default number of workers (realip: one
# runtime thread per core; nginx: `worker_processes auto`), XFF handling
# and access logs on, keep-alive timeouts long enough to outlast the run.
#
# Usage: scripts/bench-idle.sh   (env: IDLE_COUNTS, PROXIES="realip nginx", REALIP_BIN)
# Needs: nginx, python3; a release build of realip (or REALIP_BIN).
# Bounded: at most max(IDLE_COUNTS) connections per proxy, all to 127.0.0.1,
# about 15 s per N per proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
counts="${IDLE_COUNTS:-3000 8000}"
proxies="${PROXIES:-realip nginx}"
for c in nginx python3; do
  command -v "$c" >/dev/null || { echo "bench-idle: $c is required" >&2; exit 1; }
done
if [ -n "${REALIP_BIN:-}" ]; then
  realip="$REALIP_BIN"
else
  cargo build --release -q -p realip
  realip="${CARGO_TARGET_DIR:-$PWD/target}/release/realip"
fi
work=$(mktemp -d /tmp/realip-bench-idle.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max=0
for n in $counts; do [ "$n" -gt "$max" ] && max=$n; done
# The client holds N sockets, each proxy N client + a few upstream fds.
if [ "$(ulimit -n)" -lt $((max + 100)) ]; then
  echo "bench-idle: fd limit $(ulimit -n) is below $((max + 100)); lower IDLE_COUNTS" >&2
  exit 1
fi

UP=18311 REALIP=18312 NGINX=18313

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-idle: port $1 did not open" >&2
  exit 1
}

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
mkdir -p "$work/up" "$work/ngx"
cat >"$work/up/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/up/nginx.pid;
error_log $work/up/error.log;
events { worker_connections 65536; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "$body"; } }
}
EOF
nginx -p "$work/up" -c "$work/up/nginx.conf" & pids+=($!)
wait_port $UP

cat >"$work/realip.toml" <<EOF
[[listener]]
name = "web"
bind = "127.0.0.1:$REALIP"
[client_ip]
trusted = ["127.0.0.1"]
sources = ["xff"]
[forward]
x_forwarded_for = "append"
x_real_ip = true
[[route]]
upstream = "up"
[[upstream]]
name = "up"
endpoints = ["127.0.0.1:$UP"]
[log]
format = "json"
path = "$work/realip-access.log"
[limits]
max_connections = 65536
idle_timeout = "300s"
header_read_timeout = "300s"
[lifecycle]
watch_interval = "0s"
EOF
"$realip" proxy --config "$work/realip.toml" 2>"$work/realip.err" & pids+=($!)
realip_pid=$!
wait_port $REALIP

cat >"$work/ngx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 65536; }
http {
  access_log $work/nginx-access.log;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$UP; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP \$remote_addr;
    }
  }
}
EOF
nginx -p "$work/ngx" -c "$work/ngx/nginx.conf" & pids+=($!)
nginx_pid=$!
wait_port $NGINX
sleep 0.5

# RSS in KiB of a process and all its children (nginx: master + workers).
rss_tree_kb() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# The client: holds its sockets until told (a line on stdin) to close them.
cat >"$work/client.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n"
socks, pending = [], []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    socks.append(s)
    pending.append(s)
    # Read as we go (200 at a time) so no response waits in a buffer.
    if len(pending) == 200 or i == n - 1:
        for t in pending:
            got = b""
            while b"\r\n\r\n" not in got or len(got) < 1024:
                chunk = t.recv(65536)
                if not chunk:
                    sys.exit(f"connection closed after {len(got)} bytes")
                got += chunk
        pending = []
print("idle", flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
print("closed", flush=True)
sys.stdin.readline()
PY

# One round: open N, request once each, hold idle, sample, close, sample.
# The client signals phases on its stdout; we answer on its stdin.
round() { # name port pid n
  local name=$1 port=$2 pid=$3 n=$4 before with after fds_with fds_after
  sleep 1
  before=$(rss_tree_kb "$pid")
  coproc CLIENT { python3 -u "$work/client.py" "$port" "$n"; }
  local line
  read -r line <&"${CLIENT[0]}"
  [ "$line" = idle ] || { echo "bench-idle: client failed for $name" >&2; exit 1; }
  sleep 3
  with=$(rss_tree_kb "$pid"); fds_with=$(fds "$pid")
  echo go >&"${CLIENT[1]}"
  read -r line <&"${CLIENT[0]}"
  sleep 3
  after=$(rss_tree_kb "$pid"); fds_after=$(fds "$pid")
  echo go >&"${CLIENT[1]}"
  wait "$CLIENT_PID" 2>/dev/null || true
  printf "%-7s %6s %11.1f %11.1f %11.1f %13.2f %9.0f%% %9s %9s\n" "$name" "$n" \
    "$(echo "$before / 1024" | bc -l)" "$(echo "$with / 1024" | bc -l)" "$(echo "$after / 1024" | bc -l)" \
    "$(echo "($with - $before) / $n" | bc -l)" "$(echo "100 * $after / $before" | bc -l)" "$fds_with" "$fds_after"
}

echo "idle keep-alive memory: each connection sent one request (1 KiB response), then stayed idle"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(uname -r); date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-7s %6s %11s %11s %11s %13s %10s %9s %9s\n" proxy conns "before MiB" "idle MiB" "after MiB" "KiB/idle conn" "after/before" "fds idle" "fds after"
for n in $counts; do
  for p in $proxies; do
    case $p in
      realip) round realip $REALIP "$realip_pid" "$n" ;;
      nginx) round nginx $NGINX "$nginx_pid" "$n" ;;
    esac
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
