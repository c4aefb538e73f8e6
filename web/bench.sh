#!/bin/sh
# Web client measurements (figures go to docs/PERFORMANCE.md):
#   1. bundle size: gzip -9 of every JS and CSS file in web/dist, lazy chunks included;
#   2. time from "Sign in" to an interactive room list with 200 rooms, in
#      Chromium against a fresh salon (skipped while the server lacks /sync);
#   3. time to decrypt and show the last 50 messages of an encrypted room on
#      opening it.
#
#   web/bench.sh           both
#   web/bench.sh size      the bundle size only
set -eu
cd "$(dirname "$0")"

./build.sh

echo "== bundle (web/dist, gzip -9 per file)"
total_raw=0
total_gz=0
for f in $(find dist -type f \( -name '*.js' -o -name '*.css' \) | sort); do
	raw=$(wc -c <"$f")
	gz=$(gzip -9 -n -c "$f" | wc -c)
	total_raw=$((total_raw + raw))
	total_gz=$((total_gz + gz))
	printf '%10d %10d  %s\n' "$raw" "$gz" "${f#dist/}"
done
printf '%10d %10d  total (bytes: raw, gzip)\n' "$total_raw" "$total_gz"
awk -v g="$total_gz" 'BEGIN { printf "bundle: %.1f KiB gzip (target: under 1.5 MiB)\n", g / 1024 }'

[ "${1:-}" = "size" ] && exit 0

echo "== time to an interactive room list after sign-in, 200 rooms"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
(cd .. && CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/salon" ./cmd/salon &&
	CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/devproxy" ./web/internal/devproxy)
SALON_BIN="$tmp/salon" SALON_WEB_PROXY="$tmp/devproxy" node tests/bench-roomlist.mjs

echo "== time to decrypt and show the last 50 messages of an encrypted room"
SALON_BIN="$tmp/salon" SALON_WEB_PROXY="$tmp/devproxy" node tests/bench-decrypt.mjs
