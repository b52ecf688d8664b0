#!/usr/bin/env bash
# The HTTP API's authentication and browser protection against a real
# scheduler and curl: bearer tokens with roles (--api-tokens, `cairn tokens
# create`), the tokens file's permission check and reread, the Host, Origin
# and Content-Type checks, and the CLI with CAIRN_TOKEN / --token-file.
. "$(dirname "$0")/lib.sh"

put_dag hello <<'EOF2'
dag: hello
tasks:
  hi: {command: ["true"]}
EOF2

TOK=$T/tokens
# --- `cairn tokens create`
viewer=$("$CAIRN" tokens create v1 --role viewer --file "$TOK" 2>/dev/null)
operator=$("$CAIRN" tokens create o1 --role operator --file "$TOK" 2>/dev/null)
admin=$("$CAIRN" tokens create a1 --role admin --file "$TOK" 2>/dev/null)
check "tokens create prints a token" [ "${#viewer}" -ge 40 ]
check "the tokens file is created 0600" [ "$(stat -c %a "$TOK")" = 600 ]
check "the file holds the hash, not the token" \
    sh -c "! grep -q '$viewer' '$TOK' && grep -q \"^v1 viewer $(printf %s "$viewer" | sha256sum | cut -c1-64)\$\" '$TOK'"
"$CAIRN" tokens create v1 --role viewer --file "$TOK" >/dev/null 2>"$T/dup.err" && rc=0 || rc=$?
check "a second token with the same name is refused" \
    sh -c "[ $rc = 1 ] && grep -q 'already has a token' '$T/dup.err'"

# --- a tokens file readable by others is refused at start
cp "$TOK" "$T/open-tokens"; chmod 644 "$T/open-tokens"
mkdir -p "$T/bad"
timeout 20 "$SCHED" --dags "$T/dags" --data "$T/bad" --listen tcp://127.0.0.1:0 \
    --http 127.0.0.1:0 --api-tokens "$T/open-tokens" >"$T/bad.log" 2>&1 && rc=0 || rc=$?
check "a 0644 tokens file: the scheduler does not start" \
    sh -c "[ $rc = 1 ] && grep -q 'mode 0644' '$T/bad.log'"
timeout 20 "$SCHED" --dags "$T/dags" --data "$T/bad" --listen tcp://127.0.0.1:0 \
    --http 0.0.0.0:0 >"$T/bad2.log" 2>&1 && rc=0 || rc=$?
check "a non-loopback --http without tokens: refused at start" \
    sh -c "[ $rc = 1 ] && grep -q 'not a loopback address' '$T/bad2.log'"

start_scheduler sched --api-tokens "$TOK"
check "the start says the API needs tokens" logged sched "CAIRN-API-AUTH.*bearer tokens"
S=$CAIRN_SERVER
code() { curl -s -o "$T/out" -w '%{http_code}' "$@"; }
J=(-H 'Content-Type: application/json')

check "health answers without a token" [ "$(code "$S/api/v1/health")" = 200 ]
check "the UI page answers without a token" [ "$(code "$S/")" = 200 ]
st=$(curl -s -D "$T/hdr" -o "$T/out" -w '%{http_code}' "$S/api/v1/runs")
check "no token: 401 with the error shape" \
    sh -c "[ $st = 401 ] && jq -e '.error.code == \"unauthorized\"' '$T/out' >/dev/null"
check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$T/hdr"
check "a wrong token: 401" [ "$(code -H 'Authorization: Bearer cairn_nope' "$S/api/v1/runs")" = 401 ]
check "the refusal is logged" logged sched "CAIRN-HTTP-REFUSED.*401"
check "viewer reads" [ "$(code -H "Authorization: Bearer $viewer" "$S/api/v1/runs")" = 200 ]
st=$(code -X POST "${J[@]}" -H "Authorization: Bearer $viewer" "$S/api/v1/dags/hello/trigger")
check "viewer cannot trigger: 403" \
    sh -c "[ $st = 403 ] && jq -e '.error.code == \"forbidden\"' '$T/out' >/dev/null"
st=$(code -X POST "${J[@]}" -d '{}' -H "Authorization: Bearer $operator" "$S/api/v1/dags/hello/trigger")
check "operator triggers: 201" [ "$st" = 201 ]
st=$(code -X POST "${J[@]}" -H "Authorization: Bearer $operator" "$S/api/v1/artifacts/gc")
check "operator cannot collect artifacts: 403" [ "$st" = 403 ]
st=$(code -X POST "${J[@]}" -H "Authorization: Bearer $admin" "$S/api/v1/artifacts/gc?dry_run=true")
check "admin collects artifacts (not 401/403: $st)" sh -c "[ $st != 401 ] && [ $st != 403 ]"

# --- the web UI asks for a token once and keeps it for the session
curl -sf "$S/" | sed -n '/<script>/,/<\/script>/p' | sed '1d;$d' >"$T/ui.js"
out=$(node "$CAIRN_SRC/tests/ui/auth.js" "$T/ui.js" "$S" "$viewer" 2>&1) && st=0 || st=$?
echo "$out"
check "the UI's token handling ($(grep -c '^ok' <<<"$out") checks)" test "$st" = 0

# --- the file is reread when it changes
new=$("$CAIRN" tokens create v2 --role viewer --file "$TOK" 2>/dev/null)
check "a token added while running works at once" \
    [ "$(code -H "Authorization: Bearer $new" "$S/api/v1/runs")" = 200 ]
grep -v '^v2 ' "$TOK" >"$T/tok.new"; chmod 600 "$T/tok.new"; mv "$T/tok.new" "$TOK"
check "a token removed while running is refused at once" \
    [ "$(code -H "Authorization: Bearer $new" "$S/api/v1/runs")" = 401 ]
chmod 644 "$TOK"; touch "$TOK"
check "a reread file with bad permissions is refused, the old tokens stay" \
    [ "$(code -H "Authorization: Bearer $viewer" "$S/api/v1/runs")" = 200 ]
check "and that is logged" logged sched "CAIRN-API-TOKENS.*refused.*mode 0644"
chmod 600 "$TOK"
mv "$TOK" "$T/tokens.away"
for i in 1 2 3; do code -H "Authorization: Bearer $viewer" "$S/api/v1/runs" >/dev/null; done
check "a tokens file that is gone: the old tokens stay" \
    [ "$(code -H "Authorization: Bearer $viewer" "$S/api/v1/runs")" = 200 ]
check "and that is logged once" [ "$(grep -c 'CAIRN-API-TOKENS.*is gone' "$T/sched.log")" = 1 ]
mv "$T/tokens.away" "$TOK"

# --- browsers: CSRF and DNS rebinding
A=(-H "Authorization: Bearer $operator")
st=$(code -X POST -H 'Content-Type: text/plain' -d '{}' "${A[@]}" "$S/api/v1/dags/hello/trigger")
check "a text/plain POST is refused (415)" [ "$st" = 415 ]
st=$(code -X POST "${J[@]}" -H 'Origin: http://evil.example' -d '{}' "${A[@]}" "$S/api/v1/dags/hello/pause")
check "a POST from a foreign Origin is refused (403 bad_origin)" \
    sh -c "[ $st = 403 ] && grep -q bad_origin '$T/out'"
st=$(code -X POST "${J[@]}" -H "Origin: http://127.0.0.1:$HTTP_PORT" -d '{}' "${A[@]}" \
    "$S/api/v1/dags/hello/pause")
check "a POST from the scheduler's own Origin is taken" [ "$st" = 200 ]
st=$(code -H 'Host: evil.example' -H "Authorization: Bearer $viewer" "$S/api/v1/runs")
check "a foreign Host is refused (400 bad_host)" \
    sh -c "[ $st = 400 ] && grep -q bad_host '$T/out'"
check "the browser refusals are logged" \
    sh -c "grep -q 'CAIRN-HTTP-REFUSED.*bad_origin' '$T/sched.log' && grep -q 'CAIRN-HTTP-REFUSED.*bad_host' '$T/sched.log'"

# --- the CLI
"$CAIRN" runs list --dag hello >"$T/cli.out" 2>"$T/cli.err" && rc=0 || rc=$?
check "the CLI without a token fails with a clear 401 message" \
    sh -c "[ $rc = 1 ] && grep -q 'CAIRN_TOKEN' '$T/cli.err'"
check "the CLI with CAIRN_TOKEN works" sh -c "CAIRN_TOKEN='$viewer' '$CAIRN' runs list --dag hello >/dev/null"
printf '%s\n' "$operator" >"$T/optok"; chmod 600 "$T/optok"
check "the CLI with --token-file unpauses" "$CAIRN" --token-file "$T/optok" dags unpause hello
CAIRN_TOKEN=$viewer "$CAIRN" trigger hello >/dev/null 2>"$T/cli.err" && rc=0 || rc=$?
check "a viewer token cannot trigger from the CLI (403 named)" \
    sh -c "[ $rc = 1 ] && grep -q 'needs operator' '$T/cli.err'"
export CAIRN_TOKEN=$operator
start_worker w --slots 1 --isolation none
run=$("$CAIRN" trigger hello)
check "an operator's run through the CLI succeeds" [ "$(wait_run "$run" hello 60)" = success ]
finish
