#!/usr/bin/env bash
# Soak test of `realip proxy` on loopback, bounded in time:
#
#   wrk (HTTP/1.1 keep-alive)          ┐
#   h2load (h2c, prior knowledge)      │            ┌→ nginx  (ngx.test; a small file, keepalive_timeout 2s)
#   new connection per request, 0-3 s  ├→ realip ───┤
#     random gaps (soak_clients.py)    │   proxy    └→ uvicorn (uv.test; tiny ASGI app, --timeout-keep-alive 1)
#   slow clients: head and body        │
#     trickled byte by byte            ┘
#   + a reload (config rewritten with an unrelated change, SIGHUP) every 3 s
#
# Both upstreams close idle keep-alive connections sooner than the proxy's
# pool does (4 s), so pooled connections go stale under the proxy while the
# gap clients pause. Prints, per client kind, requests, failures (non-2xx
# for these valid clients, transport errors, timeouts) and p99 latency; the
# access log's status counts; reloads; and the proxy's RSS (VmRSS) at start,
# after warm-up and at the end. Exits non-zero on any failure.
#
# Usage: scripts/soak.sh [MINUTES]   (default 10; decimals allowed, e.g. 0.5)
# Env:   SOAK_KEEP=1 keeps the work directory (logs, configs) for inspection.
# Needs: nginx, wrk, h2load (nghttp2-client), python3 with venv (uvicorn
# comes from PyPI into target/soak-venv), a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
secs=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); if (s < 10) s = 10; print s }')
for c in nginx wrk h2load python3 curl; do
  command -v "$c" >/dev/null || { echo "soak: $c is required" >&2; exit 1; }
done

UVICORN="uvicorn==0.54.0"  # the version the proxy tests pin (crates/cli/tests/common)
venv="$PWD/target/soak-venv"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$UVICORN" ]; then
  echo "soak: installing $UVICORN into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$UVICORN"
  echo -n "$UVICORN" >"$venv/.installed"
fi
echo "soak: building realip (release)"
cargo build --release -q -p realip
realip="$PWD/target/release/realip"
clients="$PWD/scripts/soak_clients.py"

work=$(mktemp -d /tmp/realip-soak.XXXXXX)
chmod 755 "$work"  # nginx workers run as nobody and read the file from here
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # children first (the sleep of a reload/RSS loop), then the processes themselves
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

NGX=18411 UV=18412 WEB=18413 ADMIN=18414
for p in $NGX $UV $WEB $ADMIN; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "soak: port $p is in use" >&2; exit 1; fi
done
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "soak: port $1 did not open" >&2
  exit 1
}

# --- upstreams ------------------------------------------------------------------
mkdir -p "$work/www"
echo "hello from nginx" >"$work/www/index.html"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 2s;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$NGX; root $work/www; }
}
EOF
nginx -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" & pids+=($!)

cat >"$work/soak_app.py" <<'EOF'
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    more = True
    while more:
        msg = await receive()
        size += len(msg.get("body", b""))
        more = msg.get("more_body", False)
    body = b"hello from uvicorn\n" if scope["method"] == "GET" else f"hello from uvicorn, {size} bytes\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
EOF
"$venv/bin/python" -m uvicorn soak_app:app --app-dir "$work" --host 127.0.0.1 --port $UV \
  --timeout-keep-alive 1 --log-level warning 2>"$work/uvicorn.err" & pids+=($!)
wait_port $NGX
wait_port $UV

# --- realip proxy ---------------------------------------------------------------
# $1: a documentation address to deny — the "unrelated change" each reload makes.
write_config() {
  cat >"$work/realip.toml.new" <<EOF
[[listener]]
name = "web"
bind = "127.0.0.1:$WEB"
[client_ip]
trusted = ["127.0.0.1"]
sources = ["xff"]
[forward]
x_forwarded_for = "append"
x_real_ip = true
[[route]]
host = "ngx.test"
upstream = "nginx"
[[route]]
host = "uv.test"
upstream = "uvicorn"
[[upstream]]
name = "nginx"
endpoints = ["127.0.0.1:$NGX"]
[[upstream]]
name = "uvicorn"
endpoints = ["127.0.0.1:$UV"]
[policy]
deny = ["$1"]
[log]
format = "json"
path = "$work/access.log"
[admin]
bind = "127.0.0.1:$ADMIN"
[lifecycle]
watch_interval = "0s"
drain_delay = "0s"
drain_timeout = "2s"
EOF
  mv "$work/realip.toml.new" "$work/realip.toml"
}
write_config "192.0.2.0/32"
"$realip" proxy --check --config "$work/realip.toml" >/dev/null
"$realip" proxy --config "$work/realip.toml" 2>"$work/realip.err" & pids+=($!)
proxy_pid=$!
wait_port $WEB
wait_port $ADMIN
for h in ngx.test uv.test; do
  curl -sf --max-time 5 -H "Host: $h" "http://127.0.0.1:$WEB/index.html" >/dev/null \
    || { echo "soak: $h does not answer through the proxy" >&2; exit 1; }
done
curl -sf --max-time 5 --http2-prior-knowledge -H "Host: ngx.test" "http://127.0.0.1:$WEB/index.html" >/dev/null \
  || { echo "soak: h2c does not answer through the proxy" >&2; exit 1; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$proxy_pid/status"; }
rss_start=$(rss_kb)
echo "soak: ${secs}s of load; proxy pid $proxy_pid, VmRSS $((rss_start / 1024)) MiB at start"

# --- load -----------------------------------------------------------------------
# Rates are capped (wrk delay(), h2load --rps) so the 0-3 s gap and slow
# clients are not starved on a small machine: this is a soak, not a speed test.
wrk_lua() { # host delay_ms
  cat <<EOF
wrk.headers["Host"] = "$1"
function delay() return $2 end
EOF
}
wrk_lua ngx.test 2 >"$work/wrk-ngx.lua"
wrk_lua uv.test 5 >"$work/wrk-uv.lua"
load_pids=()
wrk -t1 -c8 -d"${secs}s" --timeout 10s --latency -s "$work/wrk-ngx.lua" \
  "http://127.0.0.1:$WEB/index.html" >"$work/wrk-ngx.out" 2>&1 & pids+=($!); load_pids+=($!)
wrk -t1 -c4 -d"${secs}s" --timeout 10s --latency -s "$work/wrk-uv.lua" \
  "http://127.0.0.1:$WEB/index.html" >"$work/wrk-uv.out" 2>&1 & pids+=($!); load_pids+=($!)
for h in ngx uv; do
  h2load -c2 -m4 --rps 100 -D "$secs" -T 10 --connect-to "127.0.0.1:$WEB" \
    --log-file "$work/h2-$h.log" "http://$h.test/index.html" >"$work/h2-$h.out" 2>&1 & pids+=($!); load_pids+=($!)
done
python3 "$clients" $WEB "$secs" 6 4 >"$work/py.out" 2>"$work/py.err" & pids+=($!); load_pids+=($!)

# Reloads every 3 s, and VmRSS every 5 s (both bounded in count).
(
  n=0
  for i in $(seq 1 $((secs / 3))); do
    sleep 3
    write_config "192.0.2.$((i % 250 + 1))/32"
    kill -HUP "$proxy_pid" 2>/dev/null || break
    n=$((n + 1))
    echo $n >"$work/reloads"
  done
) & pids+=($!)
reload_pid=$!
(
  for i in $(seq 1 $((secs / 5))); do
    sleep 5
    echo "$((i * 5)) $(awk '/^VmRSS/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null || echo 0)" >>"$work/rss"
  done
) & pids+=($!)
rss_pid=$!

fail=0
for p in "${load_pids[@]}"; do wait "$p" || true; done
rss_end=$(rss_kb 2>/dev/null || echo 0)
kill "$reload_pid" "$rss_pid" 2>/dev/null || true
if ! kill -0 "$proxy_pid" 2>/dev/null; then echo "soak: FAIL: the proxy exited during the run" >&2; fail=1; fi
sleep 1  # the last access-log lines

# --- report ---------------------------------------------------------------------
printf "\n%-10s %10s %9s %10s  %s\n" client requests failures "p99 ms" "what failed"
report() { # kind requests failures p99 detail
  printf "%-10s %10s %9s %10s  %s\n" "$1" "$2" "$3" "$4" "$5"
  [ "$3" = 0 ] || fail=1
}
for h in ngx uv; do
  out="$work/wrk-$h.out"
  reqs=$(awk '/requests in/ {print $1}' "$out")
  non2xx=$(awk -F: '/Non-2xx/ {gsub(/ /, "", $2); print $2}' "$out")
  sock=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  [ -n "$reqs" ] || { echo "soak: wrk $h printed no result:"; cat "$out"; fail=1; continue; }
  report "wrk-$h" "$reqs" $(( ${non2xx:-0} + ${sock:-0} )) "$p99" \
    "non-2xx ${non2xx:-0}, socket errors ${sock:-0} $(grep 'Socket errors' "$out" || true)"
done
for h in ngx uv; do
  out="$work/h2-$h.out"
  # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
  line=$(grep '^requests:' "$out" || true)
  [ -n "$line" ] || { echo "soak: h2load $h printed no result:"; cat "$out"; fail=1; continue; }
  done_=$(echo "$line" | awk '{print $6}')
  failed=$(echo "$line" | awk '{print $10 + $12 + $14}')
  non2xx=$(awk '/^status codes:/ {gsub(/,/, ""); print $5 + $7 + $9}' "$out")
  p99=$(awk -F'\t' '$2 == 200 {print $3 / 1000}' "$work/h2-$h.log" | sort -n \
    | awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2fms", v[i]}')
  report "h2-$h" "$done_" $((failed + non2xx)) "$p99" "failed/errored/timeout $failed, non-2xx $non2xx"
done
if [ ! -s "$work/py.out" ]; then
  echo "soak: soak_clients.py printed no result:"; cat "$work/py.err"; fail=1
else
  while read -r json; do
    eval "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("k=%s r=%s f=%s p=%s" % (d["kind"], d["requests"], d["failures"], d["p99_ms"]))' "$json")"
    detail=$(python3 -c 'import json,sys; print("; ".join(json.loads(sys.argv[1])["samples"][:3]))' "$json")
    report "$k" "$r" "$f" "${p}ms" "$detail"
  done <"$work/py.out"
fi

echo
lines=$(wc -l <"$work/access.log")
echo "access log: $lines lines; status counts: $(grep -o '"status":[0-9]*' "$work/access.log" | sort | uniq -c | awk '{printf "%s=%s ", substr($2, 10), $1}')"
errors5xx=$(grep -c '"status":5' "$work/access.log" || true)
if [ "$errors5xx" != 0 ]; then
  echo "soak: FAIL: $errors5xx 5xx answers in the access log, e.g.:"; grep -m3 '"status":5' "$work/access.log"; fail=1
fi
metrics=$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics" || true)
reload_ok=$(echo "$metrics" | awk '/^realip_config_reloads_total\{result="ok"\}/ {print $2}')
reload_err=$(echo "$metrics" | awk '/^realip_config_reloads_total\{result="error"\}/ {print $2}')
echo "reloads: $(cat "$work/reloads" 2>/dev/null || echo 0) SIGHUPs sent; proxy counted ok=${reload_ok:-0} error=${reload_err:-0}"
[ "${reload_err:-0}" = 0 ] || { echo "soak: FAIL: a reload failed:"; grep reload_failed "$work/realip.err" | head -3; fail=1; }
[ "${reload_ok:-0}" != 0 ] || { echo "soak: FAIL: no reload was applied"; fail=1; }
upstream_errors=$(echo "$metrics" | grep '^realip_upstream_errors_total' | tr '\n' ' ' || true)
echo "upstream errors counted by the proxy (retried or not): ${upstream_errors:-none}"
if grep -q panick "$work/realip.err"; then echo "soak: FAIL: the proxy panicked:"; grep -m3 panick "$work/realip.err"; fail=1; fi

warm_at=$(( secs / 5 < 60 ? secs / 5 : 60 ))
rss_warm=$(awk -v w="$warm_at" '$1 >= w {print $2; exit}' "$work/rss" 2>/dev/null)
rss_max=$(sort -k2 -n "$work/rss" 2>/dev/null | tail -1 | awk '{print $2}')
mib() { awk -v k="${1:-0}" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
echo "proxy VmRSS: start $(mib "$rss_start"), after ${warm_at}s of load $(mib "$rss_warm"), end $(mib "$rss_end"), max $(mib "$rss_max") (every 5 s, MiB: $(awk '{printf "%s%d", (NR > 1 ? " " : ""), $2 / 1024}' "$work/rss" 2>/dev/null))"
echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg); date: $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ "$fail" = 0 ]; then echo "soak: OK, 0 failed requests"; else echo "soak: FAILED" >&2; exit 1; fi
