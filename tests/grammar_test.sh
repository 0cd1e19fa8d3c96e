#!/usr/bin/env bash
# grammar_test.sh - constrained generation from the command line, judged by
# an independent validator:
#  1. 20 JSON Schemas (tests/grammar/schemas.json) x 10 seeds of sampled
#     generation (temperature 1, top-k off) with the built-in model under
#     `run --json-schema`: every output parses and validates against its
#     schema with ajv (npm, draft 2020-12 with ajv-formats; installed by
#     scripts/install_deps.sh with `npm ci --prefix tests/grammar`);
#  2. --json and --grammar / --grammar-file outputs: JSON.parse accepts the
#     first, the second matches the grammar's language (a regular one, checked
#     with a regular expression written here);
#  3. errors: a bad grammar names line and column, a schema keyword we do not
#     support is named, two grammar options at once are refused, a missing
#     file is named; each with a non-zero status and no output.
# GRAMMAR_SEEDS (default 10) and GRAMMAR_SCHEMAS (default: all) make it smaller.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
finish() { echo "grammar: $pass passed, $fail failed, $skip skipped"; [ $fail -eq 0 ]; exit $?; }
SEEDS=${GRAMMAR_SEEDS:-10}
PY=/usr/bin/python3

if ! "$SM" run --help 2>&1 | grep -q -- "--json-schema"; then
    bad "json_schema_option" "this smallmind has no --json-schema (built without Jansson?)"; finish
fi
if ! command -v node > /dev/null || [ ! -d tests/grammar/node_modules/ajv ]; then
    bad "ajv" "node and tests/grammar/node_modules are needed (scripts/install_deps.sh installs them)"; finish
fi

# ----------------------------------------------------- 1. schemas x seeds
n=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("tests/grammar/schemas.json","utf8")).length)')
mkdir -p "$TMP/out"
gen_fail=0
for i in $(seq 0 $((n - 1))); do
    case " ${GRAMMAR_SCHEMAS:-all} " in " all "|*" $i "*) ;; *) continue ;; esac
    node -e 'const s=JSON.parse(require("fs").readFileSync("tests/grammar/schemas.json","utf8"));
             process.stdout.write(JSON.stringify(s[+process.argv[1]]))' "$i" > "$TMP/schema_$i.json"
    for s in $(seq 1 "$SEEDS"); do
        if ! "$SM" run --json-schema "$TMP/schema_$i.json" --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed "$s" \
                -n 1000 --no-display-prompt > "$TMP/out/${i}_$s.json" 2> "$TMP/err"; then
            gen_fail=$((gen_fail + 1)); echo "    schema $i seed $s: $(tail -1 "$TMP/err")"
        elif ! grep -q "the grammar is complete\|end of generation" "$TMP/err"; then
            # cut off by -n: not a finished document
            gen_fail=$((gen_fail + 1)); echo "    schema $i seed $s: $(tail -1 "$TMP/err")"
        fi
    done
done
if [ $gen_fail -eq 0 ]; then ok "schemas_generated_and_complete"; else bad "schemas_generated_and_complete" "$gen_fail runs failed or were cut off"; fi
res=$(node tests/grammar/validate.js tests/grammar/schemas.json "$TMP/out" 2>&1)
if [ $? -eq 0 ]; then ok "schemas_validate_with_ajv ($(echo "$res" | tail -1))"
else bad "schemas_validate_with_ajv" "$(echo "$res" | tail -6)"; fi

# ------------------------------------------------------- 2. --json, GBNF
jbad=0
for s in 1 2 3; do
    "$SM" run --json --temp 1 --seed "$s" -n 400 --no-display-prompt > "$TMP/j$s.txt" 2> /dev/null || jbad=1
    node -e 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))' "$TMP/j$s.txt" 2> /dev/null || jbad=1
done
if [ $jbad = 0 ]; then ok "json_any_value_parses"; else bad "json_any_value_parses" "$(cat "$TMP"/j*.txt | head -c 300)"; fi
G='root ::= "The " animal " " verb ("." | "!")
animal ::= "cat" | "dog" | "lamb"
verb ::= [a-z]+'
gbad=0
for s in 1 2 3 4 5; do
    out=$("$SM" run --grammar "$G" --temp 1 --seed "$s" -n 60 --no-display-prompt 2> /dev/null) || gbad=1
    echo "$out" | grep -qxE 'The (cat|dog|lamb) [a-z]+[.!]' || { gbad=1; echo "    seed $s: '$out'"; }
done
if [ $gbad = 0 ]; then ok "gbnf_output_in_its_language"; else bad "gbnf_output_in_its_language"; fi
printf '%s\n' "$G" > "$TMP/g.gbnf"
out=$("$SM" run --grammar-file "$TMP/g.gbnf" --temp 1 --seed 9 -n 60 --no-display-prompt 2> /dev/null)
if echo "$out" | grep -qxE 'The (cat|dog|lamb) [a-z]+[.!]'; then ok "grammar_file"; else bad "grammar_file" "'$out'"; fi

# chat: every reply follows the grammar (the matcher starts again each turn)
out=$(printf 'Hello\nWho are you?\nAnd then?\n' | "$SM" chat --grammar "$G" --temp 1 -s 4 -n 60 2> "$TMP/e")
if [ "$(echo "$out" | grep -cxE 'The (cat|dog|lamb) [a-z]+[.!]')" = 3 ] && [ "$(echo "$out" | wc -l)" = 3 ]; then ok "chat_replies_follow_grammar"
else bad "chat_replies_follow_grammar" "'$out' $(tail -2 "$TMP/e")"; fi

# ------------------------------------------------------------- 3. errors
expect_error() {   # name, pattern the message must contain, command...
    local name=$1 pat=$2; shift 2
    "$@" > "$TMP/o" 2> "$TMP/e"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ ! -s "$TMP/o" ] && grep -qiE "$pat" "$TMP/e"; then ok "$name"
    else bad "$name" "status $rc: $(head -c 300 "$TMP/e")"; fi
}
expect_error "bad_grammar_names_line_and_column" "line 2.*column|2:[0-9]+" \
    "$SM" run --grammar 'root ::= "a"
x ::= ( "b"' -n 5
expect_error "grammar_without_root" "root" "$SM" run --grammar 'start ::= "a"' -n 5
expect_error "unsupported_schema_keyword_named" "patternProperties" \
    "$SM" run --json-schema '{"type":"object","patternProperties":{"^a":{"type":"string"}}}' -n 5
expect_error "schema_not_json" "json|schema" "$SM" run --json-schema '{"type": ' -n 5
expect_error "two_grammar_options_refused" "grammar|json|one of|only one" "$SM" run --json --grammar 'root ::= "a"' -n 5
expect_error "missing_grammar_file_named" "$TMP/none.gbnf" "$SM" run --grammar-file "$TMP/none.gbnf" -n 5
finish
