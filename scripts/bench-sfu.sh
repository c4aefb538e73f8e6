#!/usr/bin/env bash
# SFU load: `salon loadtest` (pion clients speaking the LiveKit protocol,
# sfu/lktest) against Salon's embedded SFU and, when LIVEKIT_BIN names a
# LiveKit server binary, against a stock LiveKit side by side.
#
# Each scenario of each round starts a fresh server, so memory is the
# scenario's own; rounds interleave the two servers (Salon first in odd
# rounds, LiveKit first in even ones) so the shared machine's load falls on
# both alike. Both servers' CPU and RSS come from /proc/PID, and CPU is
# divided by the packets the subscribers received (delivered), counted by
# the clients. Loopback only; LiveKit is a benchmark tool here, built from
# its public repository outside this tree, never a dependency:
#
#   git clone https://github.com/livekit/livekit /work/bench/livekit
#   (cd /work/bench/livekit && git checkout v1.13.5 && go build -o ../livekit-server ./cmd/server)
#   LIVEKIT_BIN=/work/bench/livekit-server scripts/bench-sfu.sh
#
# Environment: SCENARIO (audio,lecture,video,churn or all), ROUNDS (3),
# DURATION (20s), BWE (gcc|off, Salon's bandwidth estimation),
# LECTURE_PARTICIPANTS (201: one presenter and 200 viewers), SALON_BIN (a
# salon binary to run instead of building this tree, for before/after runs).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-all} DURATION=${DURATION:-20s} BWE=${BWE:-gcc} ROUNDS=${ROUNDS:-3}
LECTURE_PARTICIPANTS=${LECTURE_PARTICIPANTS:-201}
LIVEKIT_BIN=${LIVEKIT_BIN:-}
[ "$SCENARIO" = all ] && SCENARIO=audio,lecture,video,churn

work=$(mktemp -d)
bin=${SALON_BIN:-$work/salon}
[ -n "${SALON_BIN:-}" ] || go build -o "$bin" ./cmd/salon
free() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
results=$work/results.txt
: >"$results"

start_salon() {
	port=$(free SOCK_STREAM)
	local mport dir=$work/salon-data
	mport=$(free SOCK_STREAM)
	rm -rf "$dir" && mkdir -p "$dir"
	cat >"$dir/salon.yaml" <<YAML
listen: 127.0.0.1:$port
metrics: {listen: 127.0.0.1:$mport}
data_dir: $dir
log: {level: warn}
turn: {enabled: false}
sfu: {udp_port: $(free SOCK_DGRAM), tcp_port: -1, max_participants: 1000, bandwidth_estimation: $BWE}
YAML
	"$bin" serve --config "$dir/salon.yaml" >"$work/salon.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
	kill -0 "$pid" 2>/dev/null || { cat "$work/salon.log"; exit 1; }
	target=(--url "http://127.0.0.1:$port" --metrics "http://127.0.0.1:$mport" --data-dir "$dir")
}

lk_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
start_livekit() {
	port=$(free SOCK_STREAM)
	cat >"$work/livekit.yaml" <<YAML
port: $port
bind_addresses: [127.0.0.1]
rtc: {udp_port: $(free SOCK_DGRAM), tcp_port: $(free SOCK_STREAM), use_external_ip: false, node_ip: 127.0.0.1, enable_loopback_candidate: true}
keys: {bench: $lk_secret}
logging: {level: error}
room: {max_participants: 1000}
YAML
	"$LIVEKIT_BIN" --config "$work/livekit.yaml" >"$work/livekit.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
	kill -0 "$pid" 2>/dev/null || { cat "$work/livekit.log"; exit 1; }
	target=(--livekit-url "http://127.0.0.1:$port" --api-key bench --api-secret "$lk_secret")
}

stop() {
	kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	pid=
}

one() { # server scenario
	"start_$1"
	local extra=()
	[ "$2" = lecture ] && extra=(--participants "$LECTURE_PARTICIPANTS")
	if ! "$bin" loadtest "${target[@]}" --pid "$pid" --scenario "$2" --duration "$DURATION" "${extra[@]}" >"$work/run.txt" 2>&1; then
		echo "  $1 $2 failed:"; sed 's/^/    /' "$work/run.txt"
	fi
	grep -v '^RESULT' "$work/run.txt" | sed 's/^/  /' || true
	grep '^RESULT' "$work/run.txt" | sed "s/\$/ round=$round/" >>"$results" || true
	stop
}

servers=(salon)
[ -n "$LIVEKIT_BIN" ] && servers+=(livekit)
echo "# SFU benchmark"
echo "date: $(date -u +%FT%TZ)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$LIVEKIT_BIN" ] && echo "livekit: $("$LIVEKIT_BIN" --version 2>/dev/null | head -1)"
echo "scenarios: $SCENARIO; $DURATION windows; $ROUNDS rounds; lecture $LECTURE_PARTICIPANTS participants; Salon bandwidth estimation $BWE"
for round in $(seq "$ROUNDS"); do
	echo "## round $round (load $(cut -d' ' -f1-3 /proc/loadavg))"
	order=("${servers[@]}")
	if [ $((round % 2)) = 0 ] && [ ${#servers[@]} = 2 ]; then order=(livekit salon); fi
	for sc in ${SCENARIO//,/ }; do
		for s in "${order[@]}"; do one "$s" "$sc"; done
	done
done

echo
echo "## medians over $ROUNDS rounds (ratios: Salon / LiveKit within each round, then the median)"
echo "(sequence gaps: packets missing from what subscribers received; shortfall: also counts"
echo " subscribers moved to a lower simulcast layer by congestion control)"
python3 - "$results" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    rows[(kv["scenario"], kv["server"])][kv["round"]] = kv
fields = [("cpu_us_per_delivered", "µs CPU/delivered pkt"), ("rss_mib", "RSS MiB"), ("seq_loss_pct", "sequence gaps %"), ("loss_pct", "shortfall %"), ("delivered_pps", "delivered pkt/s")]
scen = sorted({s for s, _ in rows}, key=["audio", "lecture", "video", "churn"].index)
print("| scenario | server | " + " | ".join(n for _, n in fields) + " |")
print("|---|---|" + "---|" * len(fields))
med = lambda xs: statistics.median(xs) if xs else float("nan")
for s in scen:
    for srv in ("salon", "livekit"):
        r = rows.get((s, srv))
        if not r:
            continue
        print(f"| {s} | {srv} | " + " | ".join(f"{med([float(x[f]) for x in r.values()]):.2f}" for f, _ in fields) + " |")
    a, b = rows.get((s, "salon")), rows.get((s, "livekit"))
    if a and b:
        common = sorted(set(a) & set(b))
        ratio = lambda f: med([float(a[k][f]) / float(b[k][f]) for k in common if float(b[k][f]) > 0])
        print(f"| {s} | **Salon/LiveKit** | **{ratio('cpu_us_per_delivered'):.2f}×** | **{ratio('rss_mib'):.2f}×** | | | {ratio('delivered_pps'):.2f}× |")
PY
