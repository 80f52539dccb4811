# syntax=docker/dockerfile:1
# The core engine and the API gateway, built from this workspace, for
# docker-compose-observability.yml. One image holds both binaries; the command picks one
# (`core-engine` or `api-gateway`) and the environment configures it (`--help` lists the variables).
# No protoc is needed: engine/build.rs compiles the proto with protox.
#
# The harness image, for the fleets of deploy/kubernetes/, is the `harness` target, built the same
# way: `docker build --target harness -t harness .`. The default target stays the services' image.

# The workspace's rust-version (Cargo.toml).
ARG RUST_VERSION=1.89.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /workspace
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/workspace/target \
    cargo build --release --locked -p engine \
    && install -D -m 0755 -t /out target/release/core-engine target/release/api-gateway

FROM rust:${RUST_VERSION}-slim-bookworm AS build-harness
WORKDIR /workspace
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/workspace/target \
    cargo build --release --locked --bin harness \
    && install -D -m 0755 -t /out target/release/harness

# `harness run --shard I/N` and `harness merge`; scenarios and results come in on volumes.
FROM debian:12.13-slim AS harness
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin harness
COPY --from=build-harness /out/ /usr/local/bin/
USER 10001
ENTRYPOINT ["harness"]
CMD ["--help"]

FROM debian:12.13-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin engine
COPY --from=build /out/ /usr/local/bin/
USER 10001
EXPOSE 50051 50052 8080
CMD ["core-engine"]
