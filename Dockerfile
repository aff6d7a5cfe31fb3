# msgbus in a container: built with Bun (from npm) on the build machine's own CPU, run as the musl
# binary on Alpine. Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .
#
#   docker run -p 6552:6552 -p 6553:6553 -v msgbus:/data ghcr.io/OWNER/msgbus
#   docker run ... ghcr.io/OWNER/msgbus serve --host 0.0.0.0 --data /data --token s3cret
#
# The binary is PID 1 (exec form): `docker stop` sends SIGTERM and serve stops gracefully, exit 0.

# ---- build: cross-compiles for the target platform, so no emulation is needed here ----
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
ARG TARGETARCH
# build.ts puts these in `msgbus --version` (there is no .git in the build context).
ARG MSGBUS_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN case "$TARGETARCH" in \
      amd64) target=linux-x64-musl ;; \
      arm64) target=linux-arm64-musl ;; \
      *) echo "no msgbus build for $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && node_modules/.bin/bun build.ts --local --target "$target" --out /out/msgbus \
 && mkdir -p /out/data

# ---- run: Alpine (musl), Bun's runtime needs libstdc++ and libgcc; busybox wget probes health ----
FROM alpine:3.20
# hadolint ignore=DL3018
RUN apk add --no-cache libstdc++ libgcc \
 && addgroup -S -g 10001 msgbus \
 && adduser -S -D -H -u 10001 -G msgbus -h /data msgbus
COPY --from=build /out/msgbus /usr/local/bin/msgbus
COPY --from=build --chown=10001:10001 /out/data /data
USER 10001:10001
VOLUME /data
EXPOSE 6552 6553
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD wget -q -O /dev/null "http://127.0.0.1:${MSGBUS_HTTP_PORT:-6553}/_/health" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/msgbus"]
CMD ["serve", "--host", "0.0.0.0", "--data", "/data"]
