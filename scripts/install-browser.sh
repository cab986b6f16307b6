#!/usr/bin/env bash
# Install Debian's headless Chromium for the browser tests (HTML report). Idempotent; needs root.
set -euo pipefail
if command -v chromium >/dev/null; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
    echo "install-browser: chromium is missing and we are not root; browser tests will skip" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
