#!/usr/bin/env bash
# The README's main command: reproduce client → cloud LB → kube-proxy
# (Cluster/Local) → ingress → app in network namespaces and show what each
# hop sees. Run it as root (or with sudo): it first installs what the lab
# needs (iproute2, nftables) when missing. As any other user it runs the
# loopback approximation and says what it skips and how to run the full lab.
# Arguments go to `realip lab` (e.g. --scenario local --json, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  if ! { command -v nft && command -v ip; } >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null
  fi
else
  if command -v sudo >/dev/null; then how="sudo scripts/lab.sh"; else how="scripts/lab.sh as root (su -c scripts/lab.sh)"; fi
  echo "scripts/lab.sh: not root, so no network namespaces or nftables: only the scenarios that loopback" >&2
  echo "  reproduces honestly run; the ones needing kube-proxy, nodes or a health-checking LB are skipped." >&2
  echo "  For the full lab run: $how" >&2
fi
if ! command -v cargo >/dev/null; then
  echo "scripts/lab.sh: cargo not found; install a stable Rust toolchain (1.85 or newer)" >&2
  exit 1
fi
cargo build --release -q -p realip
exec target/release/realip lab "$@"
