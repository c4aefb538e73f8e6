#!/bin/sh
# End-to-end encryption against real clients, through a real `salon serve`:
# - nio.test.mjs: interop with a second, independent implementation, a
#   matrix-nio client (libolm; Debian's python3-matrix-nio and python3-olm)
#   and a matrix-js-sdk client (Rust crypto, vodozemac) exchange encrypted
#   messages both ways;
# - backup.test.mjs: matrix-js-sdk backs up its room keys to Salon's
#   server-side key backup and a new device restores them and reads;
# - sliding.test.mjs: matrix-js-sdk's SlidingSync (simplified sliding sync,
#   MSC4186) fills its lists and subscriptions and receives a message,
#   and carries an encrypted DM (Rust crypto) through its extensions.
#
#   web/tests/interop/run.sh
#
# Installs the Debian packages when they are missing (the Python package
# index is not used), `npm ci` when web/node_modules is missing, builds
# salon and runs the tests. Each skips, saying why, when the server does not
# serve what it needs (the E2EE endpoints; the r0 paths nio 0.20 calls).
set -eu
cd "$(dirname "$0")/../.."
web=$(pwd)
python=${NIO_PYTHON:-/usr/bin/python3}

if ! "$python" -c 'import nio, olm' >/dev/null 2>&1; then
	echo "interop: installing Debian's python3-matrix-nio and python3-olm"
	if [ "$(id -u)" = 0 ]; then
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-matrix-nio python3-olm
	elif command -v sudo >/dev/null 2>&1; then
		sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y python3-matrix-nio python3-olm
	else
		echo "interop: install them with: apt-get install -y python3-matrix-nio python3-olm" >&2
		exit 1
	fi
	"$python" -c 'import nio, olm'
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "interop: npm ci"
	npm ci --no-audit --no-fund --loglevel=error
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "interop: building salon"
(cd .. && CGO_ENABLED="${CGO_ENABLED:-0}" go build -o "$tmp/salon" ./cmd/salon)

SALON_BIN="$tmp/salon" NIO_PYTHON="$python" \
	node --test --test-force-exit --test-concurrency=1 --test-timeout=600000 --test-reporter=spec tests/interop/*.test.mjs
