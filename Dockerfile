# brief in a container: a multi-stage build, a slim runtime, a non-root user, the ledger on /data.
# Build: docker build -t brief .   Run: docker run -v brief-data:/data -p 8080:8080 brief
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked || true
COPY src src
COPY templates templates
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin brief

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin brief
WORKDIR /app
COPY --from=build /src/target/release/brief /usr/local/bin/brief
COPY config config
COPY content content
COPY templates templates
# The shipped config keeps its data in ../data (relative to config/): that is the /data volume.
RUN mkdir -p /data && chown brief:brief /data && ln -s /data /app/data
VOLUME ["/data"]
USER brief
ENV BRIEF_CONFIG=/app/config/brief.toml
# The shipped config listens on 127.0.0.1:8080, which cannot be reached from outside a container:
# BRIEF_LISTEN (the same as `brief run --listen`) overrides `[server] listen` in the image only,
# so the shipped config keeps its loopback default for runs on a host.
ENV BRIEF_LISTEN=0.0.0.0:8080
EXPOSE 8080
# `docker stop` sends SIGTERM and waits 10 s: brief lets messages in flight finish within that.
STOPSIGNAL SIGTERM
CMD ["brief", "run"]
