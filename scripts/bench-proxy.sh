#!/usr/bin/env bash
# Side-by-side proxy benchmark on loopback, in one run:
#   wrk → {realip proxy, nginx (realip module), HAProxy (option forwardfor)}
#       → the same upstream (nginx `return 200` with a 1 KiB body)
# Keep-alive both sides, X-Forwarded-For handling on, access logs on (to
# files). Each proxy gets one worker on CPU 1; wrk and the upstream share
# CPU 0. With CORES=all every proxy uses every core instead (nginx
# `worker_processes auto`, HAProxy `nbthread` = CPUs, realip's default of
# one worker per CPU), nothing is pinned and wrk runs one thread per CPU:
# client, upstream and proxy then share the cores. Prints req/s, p50/p99 latency, CPU seconds and peak RSS for each,
# the ratios to nginx, and RSS with IDLE_CONNS (default 8000) idle keep-alive
# connections.
#
# Usage: scripts/bench-proxy.sh [SECONDS] [CONNECTIONS]   (default 10 s, 50;
#        env REALIP_BIN: a realip binary to use instead of building one;
#        env CORES=1 (default) or all)
# CPU and memory figures are of the whole process tree (nginx: master and
# workers; realip and HAProxy: all threads).
# Needs: nginx, haproxy, wrk, python3, taskset; a release build of realip.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-50}"
idle_conns="${IDLE_CONNS:-8000}"  # the fd hard limit here is 20000; HAProxy needs 2 per connection
cores="${CORES:-1}"
ncpu=$(nproc)
case "$cores" in
  1) client_pin=(taskset -c 0) proxy_pin=(taskset -c 1) realip_workers=(--workers 1) nginx_workers=1 haproxy_threads=1 wrk_threads=1 ;;
  all) client_pin=() proxy_pin=() realip_workers=() nginx_workers=auto haproxy_threads=$ncpu wrk_threads=$ncpu ;;
  *) echo "bench-proxy: CORES must be 1 or all, not $cores" >&2; exit 2 ;;
esac
for c in nginx haproxy wrk python3 taskset; do
  command -v "$c" >/dev/null || { echo "bench-proxy: $c is required" >&2; exit 1; }
done
if [ -n "${REALIP_BIN:-}" ]; then
  realip="$REALIP_BIN"
else
  cargo build --release -q -p realip
  realip="${CARGO_TARGET_DIR:-$PWD/target}/release/realip"
fi
work=$(mktemp -d /tmp/realip-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
ulimit -n 65536 2>/dev/null || true  # 10k idle connections per proxy

UP=18301 REALIP=18302 NGINX=18303 HAPROXY=18304 ADMIN=18305

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-proxy: port $1 did not open" >&2
  exit 1
}

# --- upstream: nginx return 200 with 1 KiB -----------------------------------
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
${client_pin[@]+"${client_pin[@]}"} nginx -p "$work/up" -c "$work/up/nginx.conf" & pids+=($!)
wait_port $UP

# --- realip proxy ---------------------------------------------------------------
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
[admin]
bind = "127.0.0.1:$ADMIN"
[lifecycle]
watch_interval = "0s"
EOF
${proxy_pin[@]+"${proxy_pin[@]}"} "$realip" proxy ${realip_workers[@]+"${realip_workers[@]}"} --config "$work/realip.toml" 2>"$work/realip.err" & pids+=($!)
realip_pid=$!
wait_port $REALIP

# --- nginx as the proxy, with the realip module ---------------------------------
cat >"$work/ngx/nginx.conf" <<EOF
worker_processes $nginx_workers;
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
${proxy_pin[@]+"${proxy_pin[@]}"} nginx -p "$work/ngx" -c "$work/ngx/nginx.conf" & pids+=($!)
nginx_pid=$!
wait_port $NGINX

# --- HAProxy with option forwardfor ---------------------------------------------
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread $haproxy_threads
  maxconn 9000
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  option forwardfor
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 30s
  timeout http-keep-alive 300s
frontend f
  bind 127.0.0.1:$HAPROXY
  default_backend b
backend b
  server up 127.0.0.1:$UP
EOF
${proxy_pin[@]+"${proxy_pin[@]}"} haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy-access.log" 2>&1 & pids+=($!)
haproxy_pid=$!
wait_port $HAPROXY

# A process and its children (nginx: the master and its workers).
tree() { echo "$1"; pgrep -P "$1" || true; }
# utime and stime of a process tree, in clock ticks
cpu_ticks() { for p in $(tree "$1"); do awk '{print $14, $15}' "/proc/$p/stat"; done | awk '{u+=$1; s+=$2} END {print u, s}'; }
hwm_kb() { for p in $(tree "$1"); do awk '/VmHWM/ {print $2}' "/proc/$p/status"; done | awk '{k+=$1} END {print k}'; }
rss_kb() { for p in $(tree "$1"); do awk '/VmRSS/ {print $2}' "/proc/$p/status"; done | awk '{k+=$1} END {print k}'; }
nginx_worker=$nginx_pid
tck=$(getconf CLK_TCK)

declare -A RPS P50 P99 CPU HWM USR_US SYS_US
run() { # name port pid
  local name=$1 port=$2 pid=$3 out before after
  ${client_pin[@]+"${client_pin[@]}"} wrk -t"$wrk_threads" -c"$conns" -d2s -H 'X-Forwarded-For: 198.51.100.7' "http://127.0.0.1:$port/" >/dev/null
  before=$(cpu_ticks "$pid")
  out=$(${client_pin[@]+"${client_pin[@]}"} wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency -H 'X-Forwarded-For: 198.51.100.7' "http://127.0.0.1:$port/")
  after=$(cpu_ticks "$pid")
  if echo "$out" | grep -q 'Non-2xx'; then echo "bench-proxy: $name answered non-2xx:"; echo "$out"; exit 1; fi
  RPS[$name]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50[$name]=$(echo "$out" | awk '$1=="50%" {print $2}')
  P99[$name]=$(echo "$out" | awk '$1=="99%" {print $2}')
  CPU[$name]=$(echo "$before $after" | awk -v t="$tck" '{printf "%.2f", ($3+$4-$1-$2)/t}')
  # CPU time per request, split into user space and kernel
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  USR_US[$name]=$(echo "$before $after" | awk -v t="$tck" -v r="$reqs" '{printf "%.1f", ($3-$1)/t*1e6/r}')
  SYS_US[$name]=$(echo "$before $after" | awk -v t="$tck" -v r="$reqs" '{printf "%.1f", ($4-$2)/t*1e6/r}')
  HWM[$name]=$(( $(hwm_kb "$pid") / 1024 ))
}
run realip $REALIP "$realip_pid"
run nginx $NGINX "$nginx_worker"
run haproxy $HAPROXY "$haproxy_pid"

# Idle keep-alive connections: open N, send one request each, keep them.
idle_rss() { # port pid
  python3 - "$1" "$idle_conns" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n")
    socks.append(s)
for s in socks:
    s.settimeout(10)
    got = b""
    while b"\r\n\r\n" not in got or len(got) < 1024:
        got += s.recv(65536)
print("ready", file=sys.stderr, flush=True)
time.sleep(8)
PY
  local py=$!
  sleep 5
  local kb; kb=$(rss_kb "$2")
  wait $py 2>/dev/null || true
  echo $(( kb / 1024 ))
}
declare -A IDLE
IDLE[realip]=$(idle_rss $REALIP "$realip_pid")
IDLE[nginx]=$(idle_rss $NGINX "$nginx_worker")
IDLE[haproxy]=$(idle_rss $HAPROXY "$haproxy_pid")

echo
echo "proxy benchmark: CORES=$cores, ${secs}s, ${conns} connections, keep-alive, 1 KiB responses, XFF on, access logs on"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(uname -r); date: $(date -u +%Y-%m-%d); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-8s %12s %10s %10s %9s %10s %10s %11s %16s\n" proxy "req/s" p50 p99 "cpu s" "user us/r" "sys us/r" "peak MiB" "RSS idle MiB"
for n in realip nginx haproxy; do
  printf "%-8s %12s %10s %10s %9s %10s %10s %11s %16s\n" "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" "${CPU[$n]}" "${USR_US[$n]}" "${SYS_US[$n]}" "${HWM[$n]}" "${IDLE[$n]}"
done
echo
for n in realip haproxy; do
  awk -v a="${RPS[$n]}" -v b="${RPS[nginx]}" -v n="$n" 'BEGIN {printf "%s / nginx req/s: %.2fx\n", n, a/b}'
done
