#!/usr/bin/env bash
# Starts a headless PulseAudio with a null sink "vmic" whose monitor is the default source, so that
# whatever is played into the sink is what a capture client (cpal via ALSA `default` ->
# libasound2-plugins -> PulseAudio) records. Idempotent: safe to run again while it is up.
# Used by .ci/run and by the end-to-end tests of `sepstream listen`.
#
#   scripts/virtual-mic.sh            start (or check) the virtual microphone
#   scripts/virtual-mic.sh --install  also apt-get install the packages it needs (CI)
#   scripts/virtual-mic.sh --stop     stop the keep-alive stream and the daemon
set -euo pipefail

SINK=vmic
RATE=${VMIC_RATE:-48000}
STATE_DIR=${VMIC_STATE_DIR:-/tmp/sepstream-vmic}
mkdir -p "$STATE_DIR"

log() { echo "virtual-mic: $*" >&2; }

if [[ "${1:-}" == "--stop" ]]; then
    if [[ -f "$STATE_DIR/keepalive.pid" ]]; then
        kill "$(cat "$STATE_DIR/keepalive.pid")" 2>/dev/null || true
        rm -f "$STATE_DIR/keepalive.pid"
    fi
    pulseaudio --kill 2>/dev/null || true
    exit 0
fi

if [[ "${1:-}" == "--install" ]]; then
    need=()
    for p in libasound2-dev pkg-config pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if ((${#need[@]})); then
        log "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

for tool in pulseaudio pactl pacat; do
    command -v "$tool" >/dev/null || { log "$tool not found (install pulseaudio pulseaudio-utils, or run with --install)"; exit 1; }
done

# 1. The daemon (as root it runs in per-user mode with a warning; that is what we want here).
if ! pactl info >/dev/null 2>&1; then
    log "starting pulseaudio"
    # VMIC_DAEMON_FLAGS: more daemon options, e.g. "--realtime=yes --high-priority=yes" (scripts/soak)
    # shellcheck disable=SC2086
    pulseaudio --daemonize=yes --exit-idle-time=-1 --disallow-exit=yes ${VMIC_DAEMON_FLAGS:-} --log-target=file:"$STATE_DIR/pulseaudio.log" 2>/dev/null \
        || pulseaudio --daemonize=yes --exit-idle-time=-1 --disallow-exit=yes ${VMIC_DAEMON_FLAGS:-}
    for _ in $(seq 1 50); do
        pactl info >/dev/null 2>&1 && break
        sleep 0.1
    done
    pactl info >/dev/null 2>&1 || { log "pulseaudio did not come up"; exit 1; }
fi

# 2. Never suspend the sink: a suspended sink delays the first capture callback.
if pactl list short modules | grep -q module-suspend-on-idle; then
    pactl unload-module module-suspend-on-idle || true
fi

# 3. The null sink and its monitor as the default source.
if ! pactl list short sinks | awk '{print $2}' | grep -qx "$SINK"; then
    pactl load-module module-null-sink sink_name="$SINK" rate="$RATE" channels=1 >/dev/null
fi
pactl set-default-sink "$SINK"
pactl set-default-source "$SINK.monitor"

# 4. A silent low-latency stream keeps the sink running with small buffers; without it the first
#    capture callback can arrive up to 2 s late and what was played meanwhile is lost.
alive=0
if [[ -f "$STATE_DIR/keepalive.pid" ]] && kill -0 "$(cat "$STATE_DIR/keepalive.pid")" 2>/dev/null; then
    alive=1
fi
if ((alive == 0)); then
    nohup pacat --playback --device="$SINK" --latency-msec=10 --rate="$RATE" --channels=1 --format=s16le \
        --raw < /dev/zero >/dev/null 2>&1 &
    echo $! > "$STATE_DIR/keepalive.pid"
    disown || true
fi

log "ready: default source $SINK.monitor at $RATE Hz (keep-alive pid $(cat "$STATE_DIR/keepalive.pid"))"
