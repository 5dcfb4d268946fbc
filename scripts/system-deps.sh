#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sepstream needs (ALSA headers for cpal, PulseAudio for the
# virtual microphone in tests, espeak-ng/flite/sox for test audio and extra training speech, fontconfig for plots), if missing.
set -euo pipefail
pkgs=(pkg-config libasound2-dev libasound2-plugins pulseaudio pulseaudio-utils alsa-utils
      espeak-ng flite sox bc libfontconfig1-dev fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
