#!/usr/bin/env bash
# The README's main command: reproduce client → cloud LB → kube-proxy
# (Cluster/Local) → ingress → app in network namespaces and show what each
# hop sees. As root it first installs what the lab needs (iproute2,
# nftables); without root `realip lab` runs its loopback approximation and
# says what it skipped. Arguments go to `realip lab` (e.g. --scenario local
# --json, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && ! { command -v nft && command -v ip; } >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null
fi
cargo build --release -q -p realip
exec target/release/realip lab "$@"
