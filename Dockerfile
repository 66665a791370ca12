# brief's daemon in a container: `docker build -t brief .`, then see docs/daemon.md ("Container").
# The image holds the shipped config, content and templates; mount your own over /app/config,
# /app/content and /app/templates, and keep /app/data (ledger, token key, outbox) on a volume.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
# The built-in look is compiled into the binary.
COPY templates templates
RUN cargo build --release --locked --bin brief

FROM debian:bookworm-slim
# Root certificates for SMTP over TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin brief
WORKDIR /app
COPY --from=build /src/target/release/brief /usr/local/bin/brief
COPY config config
COPY content content
COPY templates templates
RUN mkdir data && chown brief:brief data
USER brief
VOLUME ["/app/data"]
# The shipped config listens on loopback, which is unreachable from outside a container:
# BRIEF_LISTEN (the same as `brief run --listen`) overrides `[server] listen` here only.
ENV BRIEF_LISTEN=0.0.0.0:8080
EXPOSE 8080
# `docker stop` sends SIGTERM and waits 10 s: brief lets messages in flight finish within that.
STOPSIGNAL SIGTERM
CMD ["brief", "run"]
