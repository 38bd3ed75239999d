# syntax=docker/dockerfile:1
#
# One image for all six functions: FUNCTION_TARGET (set per Knative Service) picks which one a
# container serves, so create/confirm/cancel/status/webhook/health share layers, cache and CVE scans.
#
# Stages:
#   deps       all dependencies (dev ones included: esbuild and TypeScript build the bundles)
#   build      `npm run build` -> dist/main.js, dist/functions/<name>.cjs (one file per function, with the V8
#              code cache the build records by starting each one once), dist/functions-framework.js,
#              dist/migrate.js, dist/reconcile.js
#   prod-deps  production dependencies only: the bundles keep pg, ioredis, stripe, pino, PGlite,
#              the Neon driver, ws, functions-framework and @opentelemetry/* external, so they must
#              be in node_modules at run time
#   runtime    node:22-slim with dist/, the pruned node_modules and the SQL migrations
#
# Pin the base image by digest in CI (node:22-slim@sha256:...) so a rebuild is reproducible. Build and runtime
# must be the same Node: V8 refuses a code cache recorded by another version (the function then compiles from
# scratch, a slower cold start but no error).

FROM node:22-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The cache mount keeps npm's download cache out of every layer.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

FROM deps AS build
COPY . .
RUN npm run build

FROM node:22-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

FROM node:22-slim AS runtime
# NODE_ENV=production makes the service refuse to start without a real database and a JWT key
# instead of silently falling back to PGlite and a generated secret.
# PORT: Knative sets it to 8080 anyway; the default here makes `docker run -p 8080:8080` behave the same.
ENV NODE_ENV=production \
    PORT=8080 \
    FUNCTION_TARGET=all
WORKDIR /app
# Everything under /app stays owned by root and is only readable by the service's user: the process
# cannot rewrite its own code, and the image runs unchanged with readOnlyRootFilesystem. Nothing is
# written outside /tmp (PGlite, the only thing that wants a data directory, is never used in production).
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json carries "type": "module" for the ESM bundles in dist/.
COPY package.json ./
# Migrations are read at run time from lib/db/migrations/*.sql relative to /app (dist/migrate.js).
COPY lib/db/migrations ./lib/db/migrations
# A numeric user: Kubernetes can only verify runAsNonRoot against a numeric UID
# (1000 is the `node` user of the official image).
USER 1000:1000
EXPOSE 8080
# No tini: node is PID 1 and the service installs its own SIGTERM handler (stop accepting, finish
# in-flight requests, flush the outbox and telemetry, close pools: about 20 s). It spawns no children,
# so there are no zombies to reap.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
