#!/bin/sh
# A Chromium for the viewer's browser tests (tests/test_viewer_browser.py): Debian's package where
# this is a Debian or Ubuntu machine we are root on, else the one Playwright downloads.
set -e
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  python -m playwright install chromium
fi
