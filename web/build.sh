#!/bin/sh
# Builds the web client into web/dist, which the salon binary embeds
# (web/embed.go). Run by `make build`; safe to run again: it does nothing
# when dist is newer than every source file.
#
#   web/build.sh          build when something changed
#   web/build.sh --force  build anyway
set -eu
cd "$(dirname "$0")"

force=0
[ "${1:-}" = "--force" ] && force=1

if ! command -v npm >/dev/null 2>&1; then
	echo "web/build.sh: npm is missing; install Node.js 20 or later (Debian: apt-get install -y nodejs npm)" >&2
	exit 1
fi

# Packages: `npm ci` when node_modules is missing or older than the lock.
# npm writes node_modules/.package-lock.json at every install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "web: npm ci"
	npm ci --no-audit --no-fund --loglevel=error
fi

stamp=dist/index.html
if [ "$force" = 0 ] && [ -f "$stamp" ]; then
	newer=$(find src public index.html package.json package-lock.json tsconfig.json vite.config.ts build.sh \
		-newer "$stamp" -print 2>/dev/null | head -n 1)
	if [ -z "$newer" ]; then
		exit 0
	fi
fi

echo "web: type-check and build"
npx --no-install tsc --noEmit -p .
# dist/.gitkeep is tracked so that a checkout without a build compiles;
# everything else in dist is the build's.
mkdir -p dist
find dist -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
npx --no-install vite build --logLevel warn
touch dist/.gitkeep
# Precompressed copies, served to browsers that accept gzip.
find dist -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.svg' -o -name '*.json' -o -name '*.wasm' \) \
	-size +1k -exec gzip -9 -k -n -f {} +
# The stamp is the last file written.
touch "$stamp"
echo "web: built into web/dist"
