#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the page tests, installing Debian's
# chromium package when the machine has none (apt-get: the machine's Debian registry).
# CHROMIUM_PATH, when set to an executable, is used as is.
set -euo pipefail
if [[ -n "${CHROMIUM_PATH:-}" && -x "${CHROMIUM_PATH}" ]]; then
  echo "$CHROMIUM_PATH"
  exit 0
fi
for p in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [[ -x "$p" ]]; then
    echo "$p"
    exit 0
  fi
done
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  sudo="sudo"
fi
echo "installing Debian's chromium for the page tests" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends chromium >&2
if [[ ! -x /usr/bin/chromium ]]; then
  echo "chromium.sh: /usr/bin/chromium is missing after installing the chromium package" >&2
  exit 1
fi
echo /usr/bin/chromium
