# syntax=docker/dockerfile:1
# The image of the payments service. The five Dockerfiles here differ only in the binary name.
# Build from the repository root (the workspace is the context; .dockerignore drops target/):
#   docker build -f examples/services/docker/payments.Dockerfile -t platformctl/payments:0.1.0 .
# VERSION is the crate version (examples/services/Cargo.toml): keep the two in step.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p platform-services --bin payments \
    && install -D target/release/payments /out/payments

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="payments" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/payments /usr/local/bin/payments
# Numeric, so Kubernetes can check runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/payments"]
