#!/usr/bin/env bash
# HTTP/2 and TLS side by side on loopback, in one run:
#   {h2load, wrk} → {realip proxy, nginx} → the same upstream (nginx
#   `return 200` with a 1 KiB body, HTTP/1.1 keep-alive)
# Each proxy gets one worker on CPU 1; the clients and the upstream share
# CPU 0. XFF handling and access logs (to files) on in both. A self-signed
# ECDSA P-256 certificate is made at run time with openssl.
#
#   h2 TLS   h2load -c CONNS -m 10 (ALPN h2), keep-alive
#   h2c      h2load -c CONNS -m 10, prior knowledge, keep-alive
#   TLS new  wrk with `Connection: close`: one full TLS handshake per
#            request (wrk does not resume sessions)
#   TLS k-a  wrk over TLS 1.3, keep-alive
#
# Prints req/s and CPU µs per request (user + kernel, of the proxy's
# process tree) for each, and realip / nginx ratios; and the load average.
#
# Usage: scripts/bench-tls.sh [SECONDS] [CONNECTIONS]   (default 10 s, 50;
#        env REALIP_BIN: a realip binary to use instead of building one)
# Needs: nginx (http_v2, ssl), h2load, wrk, openssl, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-50}"
for c in nginx h2load wrk openssl taskset; do
  command -v "$c" >/dev/null || { echo "bench-tls: $c is required" >&2; exit 1; }
done
if [ -n "${REALIP_BIN:-}" ]; then
  realip="$REALIP_BIN"
else
  cargo build --release -q -p realip
  realip="${CARGO_TARGET_DIR:-$PWD/target}/release/realip"
fi
work=$(mktemp -d /tmp/realip-bench-tls.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
ulimit -n 65536 2>/dev/null || true

UP=18311 R_TLS=18312 R_H2C=18313 N_TLS=18314 N_H2C=18315 ADMIN=18316

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-tls: port $1 did not open" >&2
  exit 1
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

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
taskset -c 0 nginx -p "$work/up" -c "$work/up/nginx.conf" & pids+=($!)
wait_port $UP

# --- realip proxy: one TLS listener (ALPN h2, http/1.1), one plain (h2c) --------
cat >"$work/realip.toml" <<EOF
[[listener]]
name = "tls"
bind = "127.0.0.1:$R_TLS"
tls = { cert = "$work/cert.pem", key = "$work/key.pem" }
[[listener]]
name = "h2c"
bind = "127.0.0.1:$R_H2C"
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
taskset -c 1 "$realip" proxy --workers 1 --config "$work/realip.toml" 2>"$work/realip.err" & pids+=($!)
realip_pid=$!
wait_port $R_TLS
wait_port $R_H2C

# --- nginx: TLS + http2, and h2c (prior knowledge) ---------------------------------
cat >"$work/ngx/nginx.conf" <<EOF
worker_processes 1;
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
    listen 127.0.0.1:$N_TLS ssl http2;
    listen 127.0.0.1:$N_H2C http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
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
taskset -c 1 nginx -p "$work/ngx" -c "$work/ngx/nginx.conf" & pids+=($!)
nginx_pid=$!
wait_port $N_TLS
wait_port $N_H2C

tree() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() { for p in $(tree "$1"); do awk '{print $14, $15}' "/proc/$p/stat"; done | awk '{u+=$1; s+=$2} END {print u + s}'; }
tck=$(getconf CLK_TCK)
xff=(-H 'X-Forwarded-For: 198.51.100.7')

declare -A RPS CPU_US
# measure NAME KIND PID COMMAND...: warm up 2 s, run, record req/s and CPU.
measure() {
  local name=$1 kind=$2 pid=$3 out before after reqs rps
  shift 3
  "$@" 2 >/dev/null 2>&1 || true
  before=$(cpu_ticks "$pid")
  out=$("$@" "$secs" 2>&1)
  after=$(cpu_ticks "$pid")
  case "$kind" in
    h2load)
      if ! echo "$out" | grep -q "status codes: [1-9][0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx"; then
        echo "bench-tls: $name: not all 2xx:"; echo "$out"; exit 1
      fi
      rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
      reqs=$(echo "$out" | awk '/^requests:/ {print $8}') ;;
    wrk)
      if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then echo "bench-tls: $name:"; echo "$out"; exit 1; fi
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      reqs=$(echo "$out" | awk '/requests in/ {print $1}') ;;
  esac
  RPS[$name]=$rps
  CPU_US[$name]=$(awk -v a="$before" -v b="$after" -v t="$tck" -v r="$reqs" 'BEGIN {printf "%.1f", (b-a)/t*1e6/r}')
}
h2() { taskset -c 0 h2load -c "$conns" -m 10 -t 1 "${xff[@]}" -D "$2" "$1"; }
wrk_close() { taskset -c 0 wrk -t1 -c"$conns" -d"$2s" "${xff[@]}" -H 'Connection: close' "$1"; }
wrk_ka() { taskset -c 0 wrk -t1 -c"$conns" -d"$2s" "${xff[@]}" "$1"; }

for p in realip nginx; do
  if [ $p = realip ]; then tls=$R_TLS h2c=$R_H2C pid=$realip_pid; else tls=$N_TLS h2c=$N_H2C pid=$nginx_pid; fi
  measure "$p h2-tls" h2load "$pid" h2 "https://127.0.0.1:$tls/"
  measure "$p h2c" h2load "$pid" h2 "http://127.0.0.1:$h2c/"
  measure "$p tls-new" wrk "$pid" wrk_close "https://127.0.0.1:$tls/"
  measure "$p tls-ka" wrk "$pid" wrk_ka "https://127.0.0.1:$tls/"
done
# What was negotiated (printed, not assumed).
proto=$(echo | openssl s_client -connect 127.0.0.1:$R_TLS -alpn h2 2>/dev/null | grep -E 'Protocol *:|ALPN protocol' | sort -u | xargs)

echo
echo "TLS/h2 benchmark: ${secs}s, ${conns} connections (h2: 10 streams each), 1 KiB responses, XFF on, access logs on"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(uname -r); date: $(date -u +%Y-%m-%d); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "realip TLS listener: $proto"
printf "%-10s %14s %14s %10s %14s %14s %10s\n" test "realip req/s" "nginx req/s" ratio "realip cpu/r" "nginx cpu/r" "cpu ratio"
for t in h2-tls h2c tls-new tls-ka; do
  awk -v t="$t" -v a="${RPS[realip $t]}" -v b="${RPS[nginx $t]}" -v c="${CPU_US[realip $t]}" -v d="${CPU_US[nginx $t]}" \
    'BEGIN {printf "%-10s %14.0f %14.0f %9.2fx %12s us %12s us %9.2fx\n", t, a, b, a/b, c, d, c/d}'
done
