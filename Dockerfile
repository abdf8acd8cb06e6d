# flowpath container image. Build:  docker build -t flowpath .   (or: podman build --format docker -t flowpath .)
# BASE must be a Debian bookworm image with Node.js 20 and npm on PATH; the default is the official one.
# scripts/image-test builds this file unchanged on a local stand-in base and runs it like the DaemonSet.
ARG BASE=node:20-bookworm-slim

# --- build: dev dependencies, TypeScript compile, then drop dev dependencies ---
FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
    && node -e 'require("netlink")'

# --- runtime-base: the base with what the exporter runs besides node ---
FROM ${BASE} AS runtime-base
# ethtool: the nic collector reads driver-private counters with `ethtool -S` (no netlink equivalent).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ethtool \
    && rm -rf /var/lib/apt/lists/*

# --- runtime: production dependencies, the compiled code and the launcher ---
FROM runtime-base AS runtime
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="flowpath" \
      org.opencontainers.image.description="Per-node Prometheus exporter that explains why a single TCP flow cannot reach line rate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE}"
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY bin/flowpath ./bin/flowpath
# The prebuilt netlink addon must load here, in the runtime stage, with the runtime's libc.
RUN node -e 'require("netlink")' && /app/bin/flowpath --version
# Non-root, numeric so that Kubernetes runAsNonRoot can check it without a passwd entry.
USER 65532:65532
EXPOSE 9632
# Liveness of the HTTP server (no curl in slim images). A non-default --web.listen-address needs
# FLOWPATH_HEALTHCHECK_URL set to match.
ENV FLOWPATH_HEALTHCHECK_URL=http://127.0.0.1:9632/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get(process.env.FLOWPATH_HEALTHCHECK_URL, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).setTimeout(4000, () => process.exit(1))"]
# The same launcher as `npm start` (node with the V8 flags flowpath is run with).
ENTRYPOINT ["/app/bin/flowpath"]
