# realip container image: the release binary on a distroless `cc` base
# (glibc, libgcc, CA certificates, a `nonroot` user 65532; no shell, no
# package manager). The binary is built by cargo, outside the image build, so
# the image users build is the one CI builds and runs (crates/cli/tests/image.rs):
#
#   scripts/image.sh                          # cargo build + strip + build → realip:dev
#   cargo build --release --locked -p realip && docker build -t realip:dev .
#
# Build the binary on glibc <= the base's (Debian 12: 2.36), e.g. on Debian 12
# or in `rust:1.85-slim-bookworm` (docs/kubernetes.md). BASE names the base
# image: CI, which cannot pull, passes a locally assembled equivalent
# (`scripts/image.sh --local-base`).
#
# Runs as a non-root user (65532) and writes nothing to its root
# filesystem, so `readOnlyRootFilesystem: true` works (the Helm chart sets
# it); the proxy's config comes from a mounted ConfigMap and its access log
# goes to stdout.

ARG BASE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE}
# Relative to the build context: the repository root (see .dockerignore),
# or scripts/image.sh's context holding only the stripped binary.
ARG BINARY=target/release/realip
COPY ${BINARY} /usr/local/bin/realip
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/realip"]
CMD ["--help"]
