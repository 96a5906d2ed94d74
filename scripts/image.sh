#!/usr/bin/env bash
# Builds the realip container image (default tag realip:dev, what the Helm
# chart and `realip manifests` default to) from the repository's Dockerfile:
# the release binary, debug info stripped, on a distroless `cc` base.
#
#   scripts/image.sh                 # base gcr.io/distroless/cc-debian12:nonroot (pulled)
#   scripts/image.sh --local-base    # base assembled from this Debian machine's files,
#                                    # nothing pulled (what CI and the image test do)
#   scripts/image.sh --tag registry.example.com/realip:0.1.0
#
# Build the binary where glibc is not newer than the base's (Debian 12:
# 2.36), e.g. on Debian 12 or in a rust:1.85-slim-bookworm container; the
# script refuses a binary that needs a newer glibc than the base has.
#
# Environment:
#   REALIP_ENGINE    podman (default when installed) or docker
#   REALIP_BINARY    use this binary instead of running
#                    `cargo build --release --locked -p realip`
#   CARGO_TARGET_DIR as for cargo (where target/release/realip is found)
set -euo pipefail
cd "$(dirname "$0")/.."

tag=realip:dev
base=gcr.io/distroless/cc-debian12:nonroot
local_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) local_base=1 ;;
    --tag) tag="${2:?--tag needs a value}"; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "image.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done

engine="${REALIP_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; elif command -v docker >/dev/null; then engine=docker; fi
fi
if [ -z "$engine" ] || ! command -v "$engine" >/dev/null; then
  echo "image.sh: no container engine (podman or docker) found; Debian: apt-get install podman runc" >&2
  exit 1
fi
eng=("$engine")
# crun fails on hybrid-cgroup hosts; runc works everywhere podman does.
if [ "$engine" = podman ] && command -v runc >/dev/null; then eng+=(--runtime runc); fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- the binary -----------------------------------------------------------
if [ -n "${REALIP_BINARY:-}" ]; then
  bin="$REALIP_BINARY"
else
  cargo build --release --locked -q -p realip
  bin="${CARGO_TARGET_DIR:-target}/release/realip"
fi
[ -x "$bin" ] || { echo "image.sh: $bin is not an executable" >&2; exit 1; }
mkdir -p "$work/context"
# Line tables are for local debugging; the image ships symbols only.
objcopy --strip-debug "$bin" "$work/context/realip"
chmod 0755 "$work/context/realip"

# --- the base ---------------------------------------------------------------
glibc_of_base=2.36 # Debian 12, what distroless cc-debian12 ships
if [ "$local_base" = 1 ]; then
  # Equivalent of distroless cc-debian12:nonroot from Debian's installed
  # packages: glibc (libc6, without locales and iconv modules, which a Rust
  # binary does not load), libgcc_s (libgcc-s1), the CA bundle
  # (ca-certificates), passwd/group with root, nobody and nonroot (65532),
  # /home/nonroot and a sticky /tmp. No shell, no package manager.
  glibc_of_base="$(dpkg-query -W -f='${Version}' libc6 | cut -d- -f1)"
  root="$work/rootfs"
  mkdir -p "$root/usr/lib" "$root/usr/lib64" "$root/usr/bin" "$root/usr/sbin" "$root/etc/ssl/certs" \
    "$root/home/nonroot" "$root/tmp" "$root/usr/local/bin"
  for d in lib lib64 bin sbin; do ln -s "usr/$d" "$root/$d"; done
  for pkg in libc6 libgcc-s1; do
    dpkg-query -L "$pkg" | while read -r f; do
      case "$f" in /usr/share/* | */gconv/* | /etc/ld.so.conf.d/*) continue ;; esac
      { [ -f "$f" ] || [ -L "$f" ]; } || continue
      real="$(readlink -f "$(dirname "$f")")/$(basename "$f")" # merged /usr
      mkdir -p "$root$(dirname "$real")"
      cp -a "$f" "$root$real"
    done
  done
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -f "$ca" ] || { echo "image.sh: $ca missing; apt-get install ca-certificates" >&2; exit 1; }
  cp "$ca" "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
  chmod 1777 "$root/tmp"
  # Everything owned by root but /home/nonroot (nonroot's, appended).
  tar --numeric-owner --owner=0 --group=0 --exclude=./home/nonroot -C "$root" -cf "$work/base.tar" .
  tar --numeric-owner --owner=65532 --group=65532 -C "$root" -rf "$work/base.tar" ./home/nonroot
  base="localhost/realip-base:debian12"
  "${eng[@]}" import -q "$work/base.tar" "$base" >/dev/null
fi

# The binary must not need a newer glibc than the base ships.
need="$(objdump -T "$work/context/realip" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$glibc_of_base" | sort -V | tail -1)" != "$glibc_of_base" ]; then
  echo "image.sh: $bin needs glibc $need, the base has $glibc_of_base; build it on Debian 12 (see docs/kubernetes.md)" >&2
  exit 1
fi

# --- the image --------------------------------------------------------------
pull=()
if [ "$local_base" = 1 ]; then pull=(--pull=never); fi
"${eng[@]}" build -q "${pull[@]}" --build-arg "BASE=$base" --build-arg BINARY=realip \
  -f Dockerfile -t "$tag" "$work/context" >/dev/null
size="$("${eng[@]}" image inspect "$tag" --format '{{.Size}}')"
echo "image.sh: built $tag on $base ($((size / 1000)) kB)"
