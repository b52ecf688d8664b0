#!/usr/bin/env bash
# Registry token auth against the real thing: Debian's docker-registry with
# `auth: token:` (realm, service, issuer, a rootcertbundle), and a token
# server (registry_token.py) that signs JWTs with the key of the
# certificate in that bundle. Its policy: anonymous tokens may pull
# repositories outside private/, alice (with her password) may do
# anything. The scheduler pins and the workers pull by following the
# registry's `WWW-Authenticate: Bearer realm=...,service=...` challenge:
# anonymously, with a docker-style auth file's credentials, and with wrong
# credentials or none for a private repository (clear errors naming the
# registry).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/images_lib.sh"

for c in umoci skopeo docker-registry runc openssl; do
    if ! command -v "$c" >/dev/null; then
        echo "not ok - $c is not installed (run scripts/install-deps.sh)"
        exit 1
    fi
done

echo "alice:right-password" >"$T/users"
start_token_registry tok "$T/users"
TOKLOG=$TOKLOG_tok
check "the registry challenges with Bearer and its token realm" \
    grep -qi "^www-authenticate: Bearer realm=\"http://127.0.0.1:[0-9]*/token\",service=\"cairn-test-registry\"" \
    <<<"$(curl -si "http://$REG_tok/v2/" | tr -d '\r')"

build_image "$T/oci" 1
push "$T/oci:1" "$REG_tok/test/img:1" --dest-creds alice:right-password
push "$T/oci:1" "$REG_tok/private/img:1" --dest-creds alice:right-password
check "skopeo pushed through the token server as alice" \
    grep -q "^token alice .*scope=repository:private/img:.*push" "$TOKLOG"

# digest_of REPO:TAG -> the manifest digest (asked with alice's token)
digest_of() {
    local tok
    tok=$(curl -sf -u alice:right-password \
        "$(sed -n 's/.*realm: //p' "$T/reg-tok.yml")?service=cairn-test-registry&scope=repository:${1%%:*}:pull" |
        jq -r .token)
    curl -sfI -H "Authorization: Bearer $tok" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG_tok/v2/${1%%:*}/manifests/${1#*:}" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
D=$(digest_of test/img:1)
check "the image is in the registry" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$D"

printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_tok" "$(printf 'alice:right-password' | base64)" >"$T/good.json"
printf '{"auths": {"%s": {"username": "alice", "password": "wrong"}}}\n' "$REG_tok" >"$T/bad.json"

put_dag tok <<EOF
dag: tok
defaults: {timeout: 60s, retries: 0}
tasks:
  anon:
    image: $REG_tok/test/img:1
    labels: {creds: none}
    command: [cat, /added.txt]
  private:
    image: $REG_tok/private/img:1
    labels: {creds: good}
    command: [cat, /added.txt]
  noauth:
    image: $REG_tok/private/img:1
    labels: {creds: none}
    command: [true]
  wrong:
    image: $REG_tok/private/img:1
    labels: {creds: bad}
    command: [true]
EOF

start_scheduler s --insecure-registry "$REG_tok" --registry-auth "$T/good.json"
start_worker wnone --insecure-registry "$REG_tok" --labels creds=none --slots 2
start_worker wgood --insecure-registry "$REG_tok" --labels creds=good \
    --registry-auth "$T/good.json"
start_worker wbad --insecure-registry "$REG_tok" --labels creds=bad \
    --registry-auth "$T/bad.json"

set +e
timeout 150 "$CAIRN" trigger tok --wait >"$T/run.out" 2>&1
set -e
RUN=$(head -n1 "$T/run.out")
check "the run ended" [ "$(wait_run "$RUN" tok 90)" != timeout ]

check "an anonymous token pulls a public repository" \
    [ "$(ti state "$RUN" tok anon)" = success -a \
      "$("$CAIRN" logs "$RUN" anon --dag tok | grep -v '^cairn: ')" = added ]
check "... the token server gave an anonymous pull token" \
    grep -q "^token anonymous service=cairn-test-registry scope=repository:test/img:pull$" "$TOKLOG"
check "credentials from the auth file get a token for a private repository" \
    [ "$(ti state "$RUN" tok private)" = success -a \
      "$("$CAIRN" logs "$RUN" private --dag tok | grep -v '^cairn: ')" = added ]
check "... the token server gave alice a pull token for it" \
    grep -q "^token alice service=cairn-test-registry scope=repository:private/img:pull$" "$TOKLOG"

NERR=$(ti error "$RUN" tok noauth)
echo "# noauth: $NERR"
check "without credentials a private repository fails the task" [ "$(ti state "$RUN" tok noauth)" = failed ]
check "... saying the registry refused anonymous access" \
    grep -q "registry $REG_tok refused the anonymous access for private/img" <<<"$NERR"

WERR=$(ti error "$RUN" tok wrong)
echo "# wrong: $WERR"
check "wrong credentials fail the task" [ "$(ti state "$RUN" tok wrong)" = failed ]
check "... saying the registry's token endpoint refused them" \
    grep -q "registry $REG_tok refused the credentials for private/img (token endpoint http://127.0.0.1:[0-9]*/token: HTTP 401)" <<<"$WERR"
check "... the token server saw them" grep -q "^refused alice " "$TOKLOG"

# the scheduler pinned both tags through the token flow
check "the scheduler pinned the public tag (anonymous or alice's token)" \
    [ "$(rj "$RUN" tok ".images[\"$REG_tok/test/img:1\"]")" = "$D" ]
check "... and the private one with its --registry-auth" \
    [ "$(rj "$RUN" tok ".images[\"$REG_tok/private/img:1\"]")" = "$(digest_of private/img:1)" ]
check "the tasks ran the pinned digest" [ "$(ti image_digest "$RUN" tok private)" = "$(digest_of private/img:1)" ]

finish
