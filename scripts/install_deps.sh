#!/usr/bin/env bash
# install_deps.sh - installs the Debian packages the test suite uses, the one
# list of them (`make test` and .ci/run call this). Beyond gcc and make:
#   pkg-config                   finding Jansson/libmicrohttpd, the install test
#   libjansson-dev               src/json (JSON Schema, message files) in the command
#   libmicrohttpd-dev            src/server in the command
#   python3-torch python3-numpy  the PyTorch reference of the parity and gradient tests
#   python3-jinja2               the Jinja2 reference of --jinja's chat templates (tests/chat_test.sh)
#   unicode-data                 regenerating src/text/unicode_tables.c
#   librsvg2-bin                 rendering the profiler's SVG
#   libopenmpi-dev openmpi-bin   src/mpi in the command (data-parallel training), mpirun for tests/mpi_test.sh
#   tmux                         driving `smallmind chat` in a terminal (tests/chatcmd_test.sh)
#   nodejs, npm                  the JSON Schema validator of tests/grammar_test.sh (ajv); the server's
#                                tests (the OpenAI Node SDK, ajv, playwright-core)
#   chromium                     the server's chat page in headless Chromium (tests/serve_test.sh)
# and, with npm, the packages of each tests/*/package-lock.json (npm ci).
# With --ci, also what .ci/run needs: clang (the libFuzzer targets), the
# AArch64 cross compiler and qemu-user (the NEON kernels), SIMDe (the
# AVX-512 kernels emulated on hosts without AVX-512: make emu-test).
# Installs with apt-get when run as root; otherwise, or off Debian, it says
# what is missing and leaves it (the tests that need it are skipped). Says
# nothing when everything is there. Always exits 0: the tests report the rest.
set -u
pkgs=(pkg-config libjansson-dev libmicrohttpd-dev python3-torch python3-numpy python3-jinja2 unicode-data librsvg2-bin tmux nodejs chromium
      libopenmpi-dev openmpi-bin)
[ "${1:-}" = --ci ] && pkgs+=(clang gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsimde-dev)
if ! command -v dpkg-query > /dev/null; then
    echo "install_deps: not a Debian system; the tests need: ${pkgs[*]} (or their equivalents)"
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: a package of its own on Debian, part of nodejs from NodeSource
command -v npm > /dev/null || missing+=(npm)

# the npm packages the tests use, from each lock file (no network when present)
npm_packages() {
    command -v npm > /dev/null || return 0
    local lock dir
    for lock in "$(dirname "$0")"/../tests/*/package-lock.json; do
        [ -f "$lock" ] || continue
        dir=$(dirname "$lock")
        [ -d "$dir/node_modules" ] && [ "$dir/node_modules/.package-lock.json" -nt "$lock" ] && continue
        echo "install_deps: npm ci in ${dir#*/../}"
        npm ci --prefix "$dir" --no-audit --no-fund > /dev/null 2>&1 || echo "install_deps: npm ci failed in $dir"
    done
}
[ ${#missing[@]} -eq 0 ] && { npm_packages; exit 0; }
if [ "$(id -u)" != 0 ]; then
    echo "install_deps: not root, so not installing ${missing[*]}: the tests that need them are skipped"
    echo "install_deps: (as root: apt-get install ${missing[*]})"
    npm_packages
    exit 0
fi
echo "install_deps: installing ${missing[*]} (apt-get)"
log=$(mktemp)
if (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}") > "$log" 2>&1; then
    echo "install_deps: installed ${missing[*]}"
else
    echo "install_deps: apt-get failed:"
    tail -5 "$log"
fi
rm -f "$log"
npm_packages
exit 0
