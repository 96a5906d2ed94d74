#!/usr/bin/env bash
# Cost of a global (Redis) rate limit on the request path, on loopback:
#   wrk → realip proxy → upstream (nginx `return 200`, 1 KiB body)
# three times: no limit, a local limit, a global limit on a local
# redis-server; both limits are high enough to allow every request, so
# each run measures the decision, not 429s. Same layout as
# bench-proxy.sh: the proxy gets one worker on CPU 1; wrk, the upstream and
# redis-server share CPU 0. Prints req/s, p50 and p99 for each, and the
# ratios and p99 added by the global limit.
#
# Usage: scripts/bench-rate-limit.sh [SECONDS] [CONNECTIONS]   (default 10 s, 50)
# Needs: nginx, redis-server, wrk, taskset; a release build of realip
# (built here, in CARGO_TARGET_DIR if set; REALIP_BIN=path uses that binary).
# STORE_TIMEOUT (default 50ms, the proxy's default) is the global run's
# rate_limit_store.timeout: on_error = "deny", so a decision slower than
# that is a 429 and fails the run.
#
# Then the same three again at a fixed load the proxy can carry (paced):
# PACED_CONNS connections (default 20), each sending its next request
# PACED_DELAY_MS after the previous answer (default 10: about 2,000 req/s
# offered; wrk's Lua delay() hook). At saturation the p99 is queueing
# behind the other connections' requests on one busy worker and swings by
# milliseconds from run to run; paced, it is the latency a decision adds
# to a request. wrk's own latency distribution gives p50 and p99.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-50}"
for c in nginx redis-server wrk taskset; do
  command -v "$c" >/dev/null || { echo "bench-rate-limit: $c is required" >&2; exit 1; }
done
if [ -n "${REALIP_BIN:-}" ]; then
  realip="$REALIP_BIN"
else
  cargo build --release -q -p realip
  realip="${CARGO_TARGET_DIR:-$PWD/target}/release/realip"
fi
work=$(mktemp -d /tmp/realip-bench-rl.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

UP=18311 PROXY=18312 REDIS=18313

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-rate-limit: port $1 did not open" >&2
  exit 1
}
wait_closed() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0
    sleep 0.05
  done
}

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
mkdir -p "$work/up"
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
# REDIS_RT=1 (diagnosis only): Redis at real-time priority, so it never
# waits for CPU 0 behind wrk and nginx; tells whether the global p99 is
# Redis' scheduling delay on a shared CPU or the proxy's own.
${REDIS_RT:+chrt -f 10} taskset -c 0 redis-server --bind 127.0.0.1 --port $REDIS --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 & pids+=($!)
wait_port $REDIS

declare -A RPS P50 P99 PCPU RCPU REQS
# utime + stime of a process, in clock ticks
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_pid=${pids[-1]}
run() { # name extra-config [paced]
  local name=$1 out pid key=$1 load=(-c"$conns")
  if [ -n "${3:-}" ]; then key="$1-paced"; load=(-c"$pconns" -s "$work/paced.lua"); fi
  cat >"$work/$name.toml" <<EOF
[[listener]]
name = "web"
bind = "127.0.0.1:$PROXY"
[client_ip]
trusted = ["127.0.0.1"]
sources = ["xff"]
[[route]]
upstream = "up"
[[upstream]]
name = "up"
endpoints = ["127.0.0.1:$UP"]
[log]
path = "$work/$name-access.log"
[lifecycle]
watch_interval = "0s"
drain_delay = "0s"
$2
EOF
  taskset -c 1 "$realip" proxy --workers 1 --config "$work/$name.toml" 2>"$work/$name.err" &
  pid=$!
  wait_port $PROXY
  taskset -c 0 wrk -t1 -c"$conns" -d2s -H 'X-Forwarded-For: 198.51.100.7' "http://127.0.0.1:$PROXY/" >/dev/null
  local p0 r0
  p0=$(ticks "$pid"); r0=$(ticks "$redis_pid")
  out=$(taskset -c 0 wrk -t1 "${load[@]}" -d"${secs}s" --latency -H 'X-Forwarded-For: 198.51.100.7' "http://127.0.0.1:$PROXY/")
  PCPU[$key]=$(( $(ticks "$pid") - p0 )); RCPU[$key]=$(( $(ticks "$redis_pid") - r0 ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
  wait_closed $PROXY
  if echo "$out" | grep -q 'Non-2xx'; then
    echo "bench-rate-limit: $key answered non-2xx:"; echo "$out"
    echo "proxy log (store errors are events rate_limit_store_*):"; tail -5 "$work/$name.err"
    exit 1
  fi
  RPS[$key]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  REQS[$key]=$(echo "$out" | awk '/requests in/ {print $1}')
  P50[$key]=$(echo "$out" | awk '$1=="50%" {print $2}')
  P99[$key]=$(echo "$out" | awk '$1=="99%" {print $2}')
}
pconns="${PACED_CONNS:-20}"
printf 'function delay()\n  return %s\nend\n' "${PACED_DELAY_MS:-10}" >"$work/paced.lua"
# One client, limits far above what the machine can send (1M/s: an
# interval of 1 µs, above the 0.25 µs a double of µs since 1970 resolves).
LOCAL='[policy]
rate = { per_second = 1000000, burst = 1000000 }'
GLOBAL="[rate_limit_store]
redis = \"redis://127.0.0.1:$REDIS/0\"
on_error = \"deny\"
timeout = \"${STORE_TIMEOUT:-50ms}\"
[policy]
rate = { per_second = 1000000, burst = 1000000, scope = \"global\" }"
run none ""
run local "$LOCAL"
run global "$GLOBAL"
run none "" paced
run local "$LOCAL" paced
run global "$GLOBAL" paced

# wrk prints latencies as e.g. 812.00us, 1.25ms, 1.02s
ms() { echo "$1" | awk '/us$/ {sub("us","");print $1/1000;next} /ms$/ {sub("ms","");print $1;next} /s$/ {sub("s","");print $1*1000}'; }
echo
echo "rate-limit benchmark: ${secs}s, ${conns} connections, keep-alive, one client, every request allowed"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(uname -r); date: $(date -u +%Y-%m-%d)"
hz=$(getconf CLK_TCK)
printf "%-8s %12s %10s %10s %16s %16s\n" limit "req/s" p50 p99 "proxy CPU us/req" "redis CPU us/req"
for n in none local global; do
  printf "%-8s %12s %10s %10s %16.1f %16.1f\n" "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" \
    "$(awk -v t="${PCPU[$n]}" -v h="$hz" -v r="${REQS[$n]}" 'BEGIN {print t * 1e6 / h / r}')" \
    "$(awk -v t="${RCPU[$n]}" -v h="$hz" -v r="${REQS[$n]}" 'BEGIN {print t * 1e6 / h / r}')"
done
echo
awk -v g="${RPS[global]}" -v l="${RPS[local]}" -v n="${RPS[none]}" -v gp="$(ms "${P99[global]}")" -v lp="$(ms "${P99[local]}")" -v np="$(ms "${P99[none]}")" 'BEGIN {
  printf "global / local req/s: %.2fx (target >= 0.8x); global / none: %.2fx\n", g/l, g/n
  printf "p99 added by the global limit: %.3f ms vs local, %.3f ms vs none (target <= 0.2 ms)\n", gp-lp, gp-np
  printf "cost per request (1/req/s): none %.1f us, local %.1f us, global %.1f us\n", 1e6/n, 1e6/l, 1e6/g
}'
echo
echo "paced: ${pconns} connections, each waiting ${PACED_DELAY_MS:-10} ms after an answer before its next request"
printf "%-8s %12s %10s %10s %16s\n" limit "req/s" p50 p99 "proxy CPU us/req"
for n in none local global; do
  k="$n-paced"
  printf "%-8s %12s %10s %10s %16.1f\n" "$n" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" \
    "$(awk -v t="${PCPU[$k]}" -v h="$hz" -v r="${REQS[$k]}" 'BEGIN {print t * 1e6 / h / r}')"
done
awk -v gp="$(ms "${P99[global-paced]}")" -v lp="$(ms "${P99[local-paced]}")" -v np="$(ms "${P99[none-paced]}")" \
  -v g5="$(ms "${P50[global-paced]}")" -v l5="$(ms "${P50[local-paced]}")" 'BEGIN {
  printf "paced: p99 added by the global limit: %.3f ms vs local, %.3f ms vs none (target <= 0.2 ms); p50 added %.3f ms\n", gp-lp, gp-np, g5-l5
}'
