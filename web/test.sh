#!/bin/sh
# The web client's browser tests, run by `make test`: Playwright
# (playwright-core) drives Debian's Chromium against a real `salon serve`
# on a fresh SQLite database. Screenshots and the traces of failing
# scenarios go to web/test-results/.
#
#   web/test.sh                       every scenario
#   web/test.sh tests/0-account.test.mjs   some of them
set -eu
cd "$(dirname "$0")"
web=$(pwd)
given=$#

# Debian's Chromium; never a browser downloaded by a test tool.
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
	echo "web/test.sh: installing Debian's chromium"
	if [ "$(id -u)" = 0 ]; then
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
	else
		echo "web/test.sh: /usr/bin/chromium is missing; install it with: apt-get install -y chromium" >&2
		exit 1
	fi
fi

# A colour emoji font, so reactions and emoji render (and screenshots show
# them) on machines that have none.
if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
	echo "web/test.sh: installing Debian's fonts-noto-color-emoji"
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-noto-color-emoji || echo "web/test.sh: no emoji font; emoji show as boxes" >&2
	elif command -v sudo >/dev/null 2>&1; then
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-noto-color-emoji || echo "web/test.sh: no emoji font; emoji show as boxes" >&2
	fi
fi

# npm ci when needed, and the bundle the binary embeds.
./build.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "web: building salon, devproxy and sfuprobe"
(cd .. && CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/salon" ./cmd/salon &&
	CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/devproxy" ./web/internal/devproxy &&
	CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/sfuprobe" ./web/internal/sfuprobe)

rm -rf test-results
mkdir -p test-results

if [ "$#" -gt 0 ]; then
	set -- "$@"
else
	set -- tests/*.test.mjs
fi

# One file at a time: each starts its own salon and browser, and the
# machine has two cores.
SALON_BIN="$tmp/salon" SALON_WEB_PROXY="$tmp/devproxy" SALON_SFU_PROBE="$tmp/sfuprobe" SALON_TEST_RESULTS="$web/test-results" \
	node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@"

# Group calls: three Chromium pages with the npm livekit-client join a call
# on Salon's SFU and must each decode the other two's video
# (signaling.TestBrowserCall).
if [ "$given" -eq 0 ] || [ "${SALON_BROWSER_CALL:-}" = 1 ]; then
	echo "web: livekit-client browser call against the embedded SFU"
	(cd .. && SALON_BROWSER_TEST=1 LIVEKIT_CLIENT_UMD="$web/node_modules/livekit-client/dist/livekit-client.umd.js" \
		NODE_PATH="$web/node_modules" go test -count=1 -run '^TestBrowserCall$' ./signaling/)
fi
