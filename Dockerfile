# realip container image: one static-ish binary on a distroless base.
#
#   docker build -t realip .
#   docker run --rm -p 8080:8080 realip echo --listen 0.0.0.0:8080
#
# Runs as a non-root user (65532) and writes nothing to its root
# filesystem, so `readOnlyRootFilesystem: true` works (the Helm chart sets
# it); the proxy's config comes from a mounted ConfigMap and its access log
# goes to stdout.

# --- build ----------------------------------------------------------------
FROM rust:1.85-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p realip \
 && install -D -m 0755 target/release/realip /out/realip

# --- run ------------------------------------------------------------------
# distroless/cc: glibc and libgcc only, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/realip /usr/local/bin/realip
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/realip"]
CMD ["--help"]
