#!/bin/bash
# System packages the tests and the book need, installed once (idempotent): Chromium (the browser
# check of the built book), chromium-driver (Selenium drives the explorer app with it, no browser
# download), npm (fetches MathJax for offline equations), ffmpeg (VGGSound clips).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } \
  || { echo "could not install ${need[*]} (no apt or no root): install them yourself" >&2; exit 1; }
