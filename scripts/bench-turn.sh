#!/usr/bin/env bash
# Relay throughput, CPU per relayed packet and allocation setup time of
# Salon's embedded TURN server and of coturn, side by side, on loopback.
#
# Both servers run at once on 127.0.0.1 with the same shared secret
# (coturn: use-auth-secret), no caps, loopback peers allowed; the same load
# generator (turn/internal/turnload) drives each in turn: 1, 10 and 100
# allocations bouncing 1,200-byte payloads off loopback echo peers through
# the relay, interleaved Salon/coturn, ROUNDS times. All traffic stays on
# 127.0.0.1, and every run is bounded in time.
#
# Usage: scripts/bench-turn.sh            (ROUNDS=3 DURATION=10s by default)
#        ROUNDS=1 DURATION=3s scripts/bench-turn.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
ALLOCATIONS=${ALLOCATIONS:-1,10,100}
SETUPS=${SETUPS:-200}
SALON_PORT=${SALON_PORT:-13478}
COTURN_PORT=${COTURN_PORT:-13479}

if ! command -v turnserver >/dev/null; then
	echo "coturn missing: installing Debian's coturn package" >&2
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y coturn
fi

work=$(mktemp -d)
salon_pid=
coturn_pid=
cleanup() {
	[ -n "$salon_pid" ] && kill "$salon_pid" 2>/dev/null && wait "$salon_pid" 2>/dev/null || true
	[ -n "$coturn_pid" ] && kill "$coturn_pid" 2>/dev/null && wait "$coturn_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/turnbench" ./turn/internal/turnbench
secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

"$work/turnbench" serve -udp "127.0.0.1:$SALON_PORT" -secret "$secret" -realm bench \
	-relay-ports 50000-59999 >"$work/salon.log" 2>&1 &
salon_pid=$!

turnserver -n --listening-ip=127.0.0.1 --listening-port="$COTURN_PORT" \
	--relay-ip=127.0.0.1 --min-port=40000 --max-port=49999 \
	--use-auth-secret --static-auth-secret="$secret" --realm=bench \
	--allow-loopback-peers --no-tcp --no-tls --no-dtls --no-cli \
	--no-stdout-log --log-file=/dev/null --pidfile="$work/coturn.pid" \
	>"$work/coturn.log" 2>&1 &
coturn_pid=$!

for _ in $(seq 50); do
	grep -q ready "$work/salon.log" 2>/dev/null && break
	sleep 0.1
done
sleep 1 # coturn prints nothing useful when ready
kill -0 "$salon_pid" && kill -0 "$coturn_pid"

echo "# TURN relay benchmark"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
echo "go: $(go version | cut -d' ' -f3), coturn: $(turnserver --version 2>/dev/null | head -1)"
echo "load: ALLOCATIONS=$ALLOCATIONS, 1200-byte payloads, window 8 per allocation, $DURATION measured after $WARMUP warm-up, $ROUNDS round(s)"
echo

results="$work/results.jsonl"
load() { # label port pid allocations [extra flags]
	"$work/turnbench" load -label "$1" -server "127.0.0.1:$2" -pid "$3" -secret "$secret" -realm bench \
		-allocations "$4" -size 1200 -window 8 -duration "$DURATION" -warmup "$WARMUP" -out "$results" "${@:5}"
}
for round in $(seq "$ROUNDS"); do
	echo "## round $round"
	for n in ${ALLOCATIONS//,/ }; do
		load salon "$SALON_PORT" "$salon_pid" "$n"
		load coturn "$COTURN_PORT" "$coturn_pid" "$n"
	done
done
echo "## sequential allocation setup"
load salon "$SALON_PORT" "$salon_pid" "" -setups "$SETUPS"
load coturn "$COTURN_PORT" "$coturn_pid" "" -setups "$SETUPS"
echo
"$work/turnbench" report "$results"
