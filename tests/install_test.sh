#!/usr/bin/env bash
# install_test.sh - `make install` into a temporary prefix: the files and
# links it must put there, the shared library's soname, the README's C
# example built against the installed tree with
# `pkg-config --cflags --libs smallmind` and run on the installed model, the
# installed command finding that model without -m, DESTDIR staging, and
# `make uninstall`.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
skp() { skip=$((skip + 1)); echo "skip $1: $2"; }
# a make of its own (not the jobs of the make that runs the tests), on the
# build the suite runs on, which is up to date: nothing is compiled here
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s BUILD="$BUILD" "$@"; }
VERSION=$(sed -n 's/^#define SM_VERSION "\(.*\)"/\1/p' include/smallmind.h)
P=$TMP/prefix

if mk install PREFIX="$P" > "$TMP/log" 2>&1; then ok "make_install"; else bad "make_install" "$(tail -3 "$TMP/log")"; fi
missing=""
for f in bin/smallmind lib/libsmallmind.a "lib/libsmallmind.so.$VERSION" include/smallmind.h lib/pkgconfig/smallmind.pc \
    share/smallmind/kjv-3m.gguf; do
    [ -f "$P/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ] && [ "$(readlink "$P/lib/libsmallmind.so.0")" = "libsmallmind.so.$VERSION" ] \
    && [ "$(readlink "$P/lib/libsmallmind.so")" = libsmallmind.so.0 ]; then
    ok "installed_files"
else
    bad "installed_files" "missing:$missing; links: $(ls -l "$P/lib" 2>&1 | tr '\n' ' ')"
fi
soname=$(readelf -d "$P/lib/libsmallmind.so.$VERSION" 2> /dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libsmallmind.so.0 ]; then ok "soname"; else bad "soname" "'$soname'"; fi

# the README's example, compiled and linked by pkg-config alone
awk '/^```c$/ { on = 1; next } /^```$/ { on = 0 } on' README.md > "$TMP/example.c"
if ! command -v pkg-config > /dev/null; then
    skp "pkg_config_example" "pkg-config is not installed (apt-get install pkg-config)"
else
    flags=$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs smallmind 2>&1)
    # shellcheck disable=SC2086
    if ${CC:-cc} ${CFLAGS:-} -std=c11 -o "$TMP/example" "$TMP/example.c" $flags 2> "$TMP/cc"; then
        out=$(LD_LIBRARY_PATH=$P/lib "$TMP/example" "$P/share/smallmind/kjv-3m.gguf" 2>&1)
        lib=$(LD_LIBRARY_PATH=$P/lib ldd "$TMP/example" | sed -n 's/.*libsmallmind.so.0 => \([^ ]*\).*/\1/p')
        if [[ "$out" == "Once upon a time"*tokens*tok/s* ]] && [ "$lib" = "$P/lib/libsmallmind.so.0" ]; then
            ok "pkg_config_example"
        else
            bad "pkg_config_example" "library '$lib', output: $(echo "$out" | head -3)"
        fi
    else
        bad "pkg_config_example" "pkg-config: $flags; cc: $(head -3 "$TMP/cc")"
    fi
fi

# the installed command, away from the checkout, finds its model without -m
out=$(cd "$TMP" && env -u SMALLMIND_MODEL "$P/bin/smallmind" run -p "And God said" -n 40 --seed 7 2> "$TMP/err")
if [ $? -eq 0 ] && [ -n "$out" ]; then ok "installed_command_default_model"
else bad "installed_command_default_model" "$(head -3 "$TMP/err")"; fi

# DESTDIR stages the same tree under another root; the .pc names the real prefix
if mk install PREFIX=/opt/smallmind-staged DESTDIR="$TMP/stage" > "$TMP/log" 2>&1 && [ -f "$TMP/stage/opt/smallmind-staged/bin/smallmind" ] \
    && grep -qx "prefix=/opt/smallmind-staged" "$TMP/stage/opt/smallmind-staged/lib/pkgconfig/smallmind.pc" && [ ! -e /opt/smallmind-staged ]; then
    ok "destdir"
else
    bad "destdir" "$(tail -3 "$TMP/log")"
fi

if mk uninstall PREFIX="$P" > "$TMP/log" 2>&1 && [ -z "$(find "$P" -type f -o -type l)" ]; then ok "make_uninstall"
else bad "make_uninstall" "left: $(find "$P" -type f -o -type l | head -5 | tr '\n' ' ')"; fi


# The optional modules' flags (the Makefile's MODULE_FLAGS): when they change, as
# when `make test` installs Jansson and libmicrohttpd after a plain `make`, the
# command's objects are compiled again; when they have not, nothing is.
flags="$BUILD/module-flags"
if [ -f "$flags" ]; then
    cp -p "$flags" "$TMP/module-flags"
    echo "cli: -DSM_OTHER test: -DSM_OTHER" > "$flags"
    plan=$(mk -n "$BUILD/smallmind" 2>&1)
    cp -p "$TMP/module-flags" "$flags"
    if [[ "$plan" == *"-c src/cli/cmd_serve.c"* ]] && [[ "$plan" == *"-c src/cli/main.c"* ]] && mk -q "$BUILD/smallmind"; then
        ok "module_flags_changed_recompile_the_command"
    else
        bad "module_flags_changed_recompile_the_command" "$(echo "$plan" | grep -c -- ' -c ') compiles planned; up to date after: $(mk -q "$BUILD/smallmind" && echo yes || echo no)"
    fi
else
    bad "module_flags_changed_recompile_the_command" "$flags is missing: the Makefile does not write it"
fi

echo "install: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
