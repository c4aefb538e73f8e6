#!/usr/bin/env bash
# SFU load (issue: group calls): `salon loadtest` against a freshly started
# `salon serve`. Pion clients (sfu/lktest) join calls on the embedded SFU
# with tokens minted from the server's own LiveKit keys; the server's CPU,
# forwarded packets and RSS come from its metrics listener. Loopback only.
#   SCENARIO=lecture DURATION=20s BWE=gcc|off scripts/bench-sfu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-all} DURATION=${DURATION:-20s} BWE=${BWE:-gcc}
bin=$(mktemp -d)/salon
go build -o "$bin" ./cmd/salon
free() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
port=$(free SOCK_STREAM)
mport=$(free SOCK_STREAM)
dir=$(mktemp -d)
cat > "$dir/salon.yaml" <<YAML
listen: 127.0.0.1:$port
metrics: {listen: 127.0.0.1:$mport}
data_dir: $dir
log: {level: warn}
turn: {enabled: false}
sfu: {udp_port: $(free SOCK_DGRAM), tcp_port: -1, max_participants: 1000, bandwidth_estimation: $BWE}
YAML
"$bin" serve --config "$dir/salon.yaml" > "$dir/out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/out.log"; exit 1; fi
echo "== sfu ($(nproc) cores, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin" loadtest --url "http://127.0.0.1:$port" --metrics "http://127.0.0.1:$mport" --data-dir "$dir" --scenario "$SCENARIO" --duration "$DURATION"
