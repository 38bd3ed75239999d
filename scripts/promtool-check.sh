#!/usr/bin/env bash
# Validates the Prometheus rules and runs their unit tests with promtool.
#
#   bash scripts/promtool-check.sh
#
# If promtool is missing it installs Debian's `prometheus` package, which ships
# /usr/bin/promtool (there is no separate promtool package in Debian), without its
# recommended exporters and without starting the server. That needs root
# and apt; on other systems put promtool on PATH first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rules=observability/prometheus-rules.yaml
tests=observability/prometheus-rules.test.yaml

install_promtool() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool is not on PATH and apt-get is not available; install Prometheus' promtool." >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is not on PATH; installing it needs root (apt-get install prometheus)." >&2
    exit 1
  fi
  echo "promtool not found; installing Debian's prometheus package" >&2
  apt-get update -qq
  # Captured first: with pipefail, `grep -q` closing the pipe early would make
  # apt-cache die of SIGPIPE and the check fail.
  local policy_out
  policy_out=$(apt-cache policy prometheus)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy_out"; then
    echo "apt has no 'prometheus' package candidate; install promtool by hand." >&2
    exit 1
  fi
  # policy-rc.d 101 tells invoke-rc.d not to start the Prometheus server the package
  # ships: we only want the promtool binary. Restored afterwards if it existed.
  local policy=/usr/sbin/policy-rc.d saved=""
  if [ -e "$policy" ]; then
    saved=$(mktemp)
    cp -p "$policy" "$saved"
  fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus || {
    if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
    exit 1
  }
  if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
  command -v promtool >/dev/null 2>&1 || {
    echo "the prometheus package did not provide promtool" >&2
    exit 1
  }
}

command -v promtool >/dev/null 2>&1 || install_promtool

promtool --version 2>&1 | head -n 1
promtool check rules "$rules"
promtool test rules "$tests"
