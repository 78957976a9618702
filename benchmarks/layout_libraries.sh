#!/usr/bin/env bash
# Install elkjs and dagre in a scratch folder (they are not dependencies of the extension), then
# time them against the viewer's own layout: benchmarks/layout_libraries.mjs says what is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f extension/lib/layout.js ]; then
  (cd extension && npm run --silent build:lib)
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/layout-libraries.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund elkjs @dagrejs/dagre)
node --no-warnings benchmarks/layout_libraries.mjs "$scratch"
