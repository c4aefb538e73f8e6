#!/usr/bin/env bash
# Messaging load (issue: rooms and messaging): `salon bench messaging`
# against a freshly started `salon serve`, on SQLite and on PostgreSQL.
# Loopback only; bounded by DURATION. Figures go into docs/PERFORMANCE.md.
#   CLIENTS=1000 ROOMS=500 RATE=200 DURATION=120s scripts/bench-messaging.sh
# SAMPLE=30s prints the server's RSS and Go heap in use every 30 s (the
# 10-minute memory run). PPROF=DIR saves a 30 s CPU profile taken under
# load and heap profiles at the start and end of the load into DIR.
# BIN=path runs that salon binary instead of building this checkout (to
# measure an older build under the same conditions). SERVE_BIN=path serves
# with that binary while this checkout's load generator loads it (an older
# server under a newer load generator's options, e.g. ROOM_SIZE). SLIDING=1 has the
# clients long-poll simplified sliding sync (MSC4186) instead of /sync.
# ROOM_SIZE=N puts N members in one room (issue 24: large rooms), joined
# one after another and timed, then loaded at RATE (DURATION=0: joins only):
#   ROOM_SIZE=2000 RATE=5 DURATION=60s scripts/bench-messaging.sh
#   ROOM_SIZE=5000 DURATION=0 scripts/bench-messaging.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000} ROOMS=${ROOMS:-500} RATE=${RATE:-200} DURATION=${DURATION:-120s}
SAMPLE=${SAMPLE:-5s} PPROF=${PPROF:-}
sliding_flags=()
if [ -n "${SLIDING:-}" ]; then sliding_flags=(--sliding); fi
if [ -n "${ROOM_SIZE:-}" ]; then sliding_flags+=(--room-size "$ROOM_SIZE"); fi
PG=${SALON_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
BACKENDS=${BACKENDS:-sqlite postgres}
export PGOPTIONS=--client-min-messages=warning
bin=${BIN:-}
if [ -z "$bin" ]; then
	bin=$(mktemp -d)/salon
	go build -o "$bin" ./cmd/salon
fi
for backend in $BACKENDS; do
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	dir=$(mktemp -d)
	cat > "$dir/salon.yaml" <<YAML
listen: 127.0.0.1:$port
metrics: {listen: 127.0.0.1:$mport}
data_dir: $dir
log: {level: warn}
rate_limits:
  register_per_ip: {per_second: 1000, burst: 100000}
  login_per_ip: {per_second: 1000, burst: 100000}
  messages_per_user: {per_second: 100, burst: 1000}
turn: {enabled: false}
sfu: {udp_port: $(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'), tcp_port: -1}
YAML
	db="sqlite:salon.db"
	if [ "$backend" = postgres ]; then
		schema=salon_bench_$$
		psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
		case "$PG" in *\?*) db="$PG&search_path=$schema" ;; *) db="$PG?search_path=$schema" ;; esac
	fi
	pprof_flags=()
	if [ -n "$PPROF" ]; then
		mkdir -p "$PPROF"
		pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		export SALON_PPROF_LISTEN=127.0.0.1:$pport
		pprof_flags=(--pprof "http://127.0.0.1:$pport" --pprof-dir "$PPROF" --pprof-name "$backend")
	fi
	"${SERVE_BIN:-$bin}" serve --config "$dir/salon.yaml" --database "$db" > "$dir/out.log" 2>&1 &
	pid=$!
	unset SALON_PPROF_LISTEN
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
	if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/out.log"; exit 1; fi
	echo "== $backend ($(nproc) cores, $(date -u +%FT%TZ), load:$(uptime | sed 's/.*load average://'))"
	# RSS split: anonymous memory (Go heap, SQLite's page caches) and
	# file pages (the binary, SQLite's memory-mapped database, which grows).
	( while kill -0 "$pid" 2>/dev/null; do
		sleep "$SAMPLE"
		awk '/RssAnon|RssFile/ {printf "%s %.1f MiB  ", $1, $2/1024} END {print ""}' "/proc/$pid/status" 2>/dev/null | sed 's/^/  server /'
	done ) &
	sampler=$!
	"$bin" bench messaging --url "http://127.0.0.1:$port" --metrics "http://127.0.0.1:$mport" --clients "$CLIENTS" --rooms "$ROOMS" --rate "$RATE" --duration "$DURATION" \
		--sample "$SAMPLE" "${pprof_flags[@]}" "${sliding_flags[@]}" || true
	kill "$sampler" 2>/dev/null || true
	echo "   load after:$(uptime | sed 's/.*load average://')"
	kill "$pid"; wait "$pid" || true
	if [ "$backend" = postgres ]; then psql "$PG" -qc "DROP SCHEMA $schema CASCADE" >/dev/null; fi
	rm -rf "$dir"
done
