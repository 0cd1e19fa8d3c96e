#!/usr/bin/env bash
# serve_test.sh - `smallmind serve` end to end (tests/serve/serve_test.mjs):
# the official OpenAI Node SDK against it, 8 concurrent streaming clients,
# hostile clients, API key, queue limit, loading, SIGTERM, the chat page
# in headless Chromium, response_format (replies checked with ajv), and
# llama-server's /tokenize, /detokenize and /apply-template (util.mjs).
# Loopback addresses only. Skips, saying why, when the
# command was built without the server (libmicrohttpd, Jansson) or Node is
# missing; installs the npm packages (tests/serve/package-lock.json) into
# tests/serve/node_modules the first time.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export SM="$BUILD/smallmind" MODEL=${MODEL:-models/kjv-3m.gguf}

skip_all() { echo "skip serve: $1"; echo "serve: 0 passed, 0 failed, 1 skipped"; exit 0; }

if "$SM" serve --port 0 -m /nonexistent.gguf 2>&1 | grep -q "built without"; then
    skip_all "this smallmind was built without libmicrohttpd and Jansson (apt-get install libmicrohttpd-dev libjansson-dev, then make)"
fi
command -v node > /dev/null || skip_all "node is not installed (Node 18 or later: apt-get install nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || skip_all "node $(node --version) is too old (18 or later)"
if [ ! -d tests/serve/node_modules/openai ] || [ ! -d tests/serve/node_modules/playwright-core ] ||
   [ ! -d tests/serve/node_modules/ajv-formats ]; then
    if command -v npm > /dev/null; then
        echo "serve_test: installing the npm packages (openai, playwright-core, ajv) into tests/serve/node_modules"
        (cd tests/serve && npm ci --no-audit --no-fund --loglevel=error) || echo "serve_test: npm ci failed: the SDK and page tests are skipped"
    else
        echo "serve_test: npm is missing: the SDK and page tests are skipped"
    fi
fi
exec node tests/serve/serve_test.mjs "$@"
