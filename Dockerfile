# Sluice as a container image: one node with SQLite in the /data volume by default, or a cluster
# node with SLUICE_STORE_URL=postgres://… and SLUICE_REDIS_URL (compose.yaml runs two of them).
# Three stages: production dependencies (better-sqlite3 is compiled here), the TypeScript build
# with dev dependencies, and the runtime, which gets only the first two stages' output.
# docs/deployment.md explains the settings; test/container.test.ts checks this file.

# package.json engines asks for Node >= 20.18.1; the 20 line's current release satisfies it.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary when one matches; the compilers are its fallback.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: the root package's `prepare` would run tsc, which is a dev dependency; the one
# install script production needs is better-sqlite3's, run on its own.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: tsc needs none (esbuild's binary is only for vitest).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=8080 \
    SLUICE_STORE_URL=sqlite:/data/sluice.db
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY web ./web
# The official image's unprivileged user (uid 1000) owns the store; nothing else is writable.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080
# /readyz, not /healthz: it answers 503 while the node drains at shutdown and, in cluster mode,
# while Redis is unreachable, so an orchestrator stops sending traffic then.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SLUICE_PORT || 8080) + '/readyz').then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]
# auth.mode is keys by default: on the first start with an empty store the admin key is printed on
# stderr (docker logs), or SLUICE_ADMIN_KEY installs one chosen in advance. Node runs as PID 1 and
# handles SIGTERM itself (drain, then exit), so `docker stop` shuts down gracefully.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
