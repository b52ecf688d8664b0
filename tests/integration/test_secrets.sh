#!/usr/bin/env bash
# Secrets through the whole system (real scheduler, runc worker, CLI): a
# task's `secrets:` reaches its container as env and as /run/secrets/NAME;
# the value, its base64 and URL-encoded forms, the value printed in two
# writes and the value split across stdout and stderr are masked in
# `cairn logs`; the value is nowhere in the
# scheduler's data folder (LMDB, logs), the API, `cairn render` or
# `cairn lineage`, which name the secret instead; a missing secret and a
# secret file readable by others fail the task at lease time naming it;
# params reach a shell safely (CAIRN_PARAM_*, | shquote); an image-host
# task cannot read /etc/shadow or the link's key; `image: /` is refused; a
# scheduler without --token-file or TLS sends no secrets, one with mutual
# TLS does.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v runc >/dev/null; then
    echo "# skipped: needs root and runc"
    exit 77
fi

VALUE="sk-live-Q7v9Zt3K p/x"
B64=$(printf %s "$VALUE" | base64 -w0)
URLV=$(jq -rn --arg s "$VALUE" '$s|@uri')
HALF1=${VALUE:0:9}
HALF2=${VALUE:9}
mkdir -p "$T/secrets"
chmod 700 "$T/secrets"
printf '%s\n' "$VALUE" >"$T/secrets/wandb"
chmod 600 "$T/secrets/wandb"
printf 'other\n' >"$T/secrets/loose"
chmod 644 "$T/secrets/loose"
# the link's key, root-only under /etc as an operator would keep it: a task
# on the host's system must not read it
KEY=/etc/cairn-it-$$-$RANDOM.key
teardown() { rm -f "$KEY"; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"
chmod 600 "$KEY"

put_dag secret <<EOF
dag: secret
defaults: {image: host, timeout: 60s}
tasks:
  use:
    secrets: {WANDB_API_KEY: wandb}
    outputs: [out.txt]
    command:
      - sh
      - -c
      - |
        echo "plain \$WANDB_API_KEY end"
        printf '%s' "\$WANDB_API_KEY" | base64 -w0; echo
        echo "url $URLV end"
        printf 'split %s' "\${WANDB_API_KEY%"$HALF2"}"; sleep 1.5; printf '%s end\n' "$HALF2"
        echo "stderr \$WANDB_API_KEY" >&2
        if [ "\$(cat /run/secrets/wandb)" = "\$WANDB_API_KEY" ]; then echo file-matches; fi
        ls -l /run/secrets/wandb | cut -c1-10
        echo done > /outputs/out.txt
        printf 'cross %s' "\${WANDB_API_KEY%"$HALF2"}"; printf '%s' "$HALF2" >&2
EOF

start_scheduler s --secrets-dir "$T/secrets" --token-file "$KEY"
start_worker w1 --token-file "$KEY"

set +e
"$CAIRN" trigger secret --wait >"$T/secret.out" 2>&1
RC=$?
set -e
RUN=$(head -n1 "$T/secret.out")
check "the run with a secret succeeded" [ "$RC" = 0 ]
LOGS=$("$CAIRN" logs "$RUN" use --dag secret)
echo "$LOGS" | sed 's/^/#   /'
check "the task saw the secret in its env (masked in its log)" grep -qx "plain \*\*\* end" <<<"$LOGS"
check "its base64 form is masked" grep -qx '\*\*\*' <<<"$LOGS"
check "its URL-encoded form is masked" grep -qx "url \*\*\* end" <<<"$LOGS"
check "the value printed in two writes is masked" grep -qx "split \*\*\* end" <<<"$LOGS"
check "stderr is masked too" grep -qx "stderr \*\*\*" <<<"$LOGS"
check "the value split across stdout and stderr (both ending the output) is masked" \
    grep -qx "cross \*\*\*" <<<"$LOGS"
check "/run/secrets/wandb holds the value" grep -qx file-matches <<<"$LOGS"
check "/run/secrets/wandb is read-only to the task (0400)" grep -qx -- "-r--------" <<<"$LOGS"
check "no form of the value in the logs" \
    bash -c '! grep -qF -e "$1" -e "$2" -e "$3" -e "$4" <<<"$5"' _ "$VALUE" "$B64" "$URLV" "$HALF1" "$LOGS"
check "the value is nowhere in the scheduler's data folder (LMDB, logs)" \
    bash -c '! grep -rqaF -e "$1" -e "$2" "$3"' _ "$VALUE" "$B64" "$T/s"
check "... and the secret name is (provenance lists it)" grep -rqaF '"name":"wandb"' "$T/s"

check "the attempt's secret files are gone from the worker" \
    [ -z "$(find "$T/w1/work" -path '*secrets*' 2>/dev/null)" ]

ATT=$(attempts "$RUN" secret use)
check "the attempts API does not contain the value" bash -c '! grep -qF "$1" <<<"$2"' _ "$VALUE" "$ATT"
check "the attempts API lists the secret by name" \
    [ "$(jq -r '.attempts[0].secrets[0].name + "/" + .attempts[0].secrets[0].env' <<<"$ATT")" = wandb/WANDB_API_KEY ]
RUNJ=$(curl -sf "$CAIRN_SERVER/api/v1/runs/$(urlenc "$RUN")?dag=secret")
check "the runs API does not contain the value" bash -c '! grep -qF "$1" <<<"$2"' _ "$VALUE" "$RUNJ"
check "the runs API lists the secret by name" \
    [ "$(jq -r '.tasks[] | select(.task=="use") | .secrets[0].name' <<<"$RUNJ")" = wandb ]
SHOW=$("$CAIRN" runs show "$RUN" --dag secret)
check "runs show names the secret" grep -qF "use: secrets: WANDB_API_KEY=<secret wandb>" <<<"$SHOW"
REND=$("$CAIRN" render "$T/dags/secret.yaml")
check "render names the secret, not its value" \
    bash -c 'grep -qF "WANDB_API_KEY=<secret wandb>" <<<"$2" && ! grep -qF "$1" <<<"$2"' _ "$VALUE" "$REND"
LIN=$("$CAIRN" lineage "$RUN" use/out.txt --dag secret 2>&1 || true)
LINJ=$("$CAIRN" lineage "$RUN" use/out.txt --dag secret --json 2>&1 || true)
check "lineage names the secret, not its value" \
    bash -c 'grep -qF "WANDB_API_KEY (secret wandb)" <<<"$2" && ! grep -qF "$1" <<<"$2$3"' _ "$VALUE" "$LIN" "$LINJ"
curl -sf "$CAIRN_SERVER/" >"$T/ui.html" || true # (a file: the page is longer than an argument may be)
check "the UI page does not contain the value" \
    bash -c 'test -s "$2" && ! grep -qF "$1" "$2"' _ "$VALUE" "$T/ui.html"

# --- a missing secret, a secret file readable by others: failed at lease time
put_dag broken <<EOF
dag: broken
defaults: {image: host, timeout: 30s, retries: 3, retry_delay: 1s}
tasks:
  missing: {command: [echo, hi], secrets: {API_TOKEN: nosuch}}
  loose: {command: [echo, hi], secrets: {API_TOKEN: loose}}
EOF
wait_until 20 "$CAIRN" dags show broken
set +e
"$CAIRN" trigger broken --wait >"$T/broken.out" 2>&1
set -e
RUN2=$(head -n1 "$T/broken.out")
check "the run with a missing secret ended" [ "$(wait_run "$RUN2" broken 30)" = failed ]
check "a missing secret fails the task" [ "$(ti state "$RUN2" broken missing)" = failed ]
check "... naming the secret and its file" \
    grep -qF "secret 'nosuch' cannot be read: $T/secrets/nosuch: no such file (for API_TOKEN)" <<<"$(ti error "$RUN2" broken missing)"
check "... at lease time, without retries" [ "$(ti attempts "$RUN2" broken missing)" = 1 ]
check "a secret file with mode 0644 is refused, naming the file" \
    grep -qF "secret 'loose' refused: $T/secrets/loose has mode 0644" <<<"$(ti error "$RUN2" broken loose)"
check "the scheduler kept running" curl -sf "$CAIRN_SERVER/api/v1/health" -o /dev/null

# --- params reach a shell safely: CAIRN_PARAM_X and | shquote
put_dag params <<'EOF'
dag: params
params: {x: plain}
defaults: {image: host, timeout: 30s}
tasks:
  viaenv:
    command: [sh, -c, 'echo "env=$CAIRN_PARAM_X"']
  viaquote:
    command: [sh, -c, "echo quoted={{ params.x | shquote }}"]
EOF
wait_until 20 "$CAIRN" dags show params
EVIL="a'; id; echo 'pwned"
"$CAIRN" trigger params --param "x=$EVIL" --wait >"$T/params.out" 2>&1 || true
RUN4=$(head -n1 "$T/params.out")
PE=$("$CAIRN" logs "$RUN4" viaenv --dag params)
PQ=$("$CAIRN" logs "$RUN4" viaquote --dag params)
echo "$PE$PQ" | sed 's/^/#   /'
check "a param with '; id' reaches the task whole through CAIRN_PARAM_X" grep -qxF "env=$EVIL" <<<"$PE"
check "... and whole through | shquote" grep -qxF "quoted=$EVIL" <<<"$PQ"
check "... and id was not run" bash -c '! grep -q "uid=" <<<"$1"' _ "$PE$PQ"
BIG=$(head -c 70000 /dev/zero | tr '\0' x)
set +e
TOUT=$("$CAIRN" trigger params --param "x=$BIG" 2>&1)
TRC=$?
set -e
check "a param value over 64 KiB is refused at trigger" \
    bash -c '[ "$1" != 0 ] && grep -qF "param '"'"'x'"'"' is 70000 bytes; a param value is at most 65536 bytes" <<<"$2"' _ "$TRC" "$TOUT"

# --- image host: the host's credential files are not readable
put_dag hostcreds <<EOF
dag: hostcreds
defaults: {image: host, timeout: 30s}
tasks:
  peek:
    command: [sh, -c, 'for f in /etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow-; do
      if [ -e \$f ]; then echo "\$f size \$(wc -c < \$f)"; fi; done;
      echo "key size \$(wc -c < $KEY)"']
EOF
wait_until 20 "$CAIRN" dags show hostcreds
"$CAIRN" trigger hostcreds --wait >"$T/hc.out" 2>&1 || true
RUN3=$(head -n1 "$T/hc.out")
HC=$("$CAIRN" logs "$RUN3" peek --dag hostcreds)
echo "$HC" | sed 's/^/#   /'
check "/etc/shadow reads as empty in an image-host task" \
    bash -c '! grep -E "^/etc/g?shadow-? size [1-9]" <<<"$1" && grep -q "^/etc/shadow size 0" <<<"$1"' _ "$HC"

check "the link's key under /etc reads as empty in an image-host task" grep -qx "key size 0" <<<"$HC"

# --- the step cache key holds the secret's digest: a rotated secret reruns
put_dag cached <<'EOF'
dag: cached
defaults: {image: host, timeout: 30s}
tasks:
  c: {command: [sh, -c, 'echo ran > /outputs/o'], outputs: [o], cache: true, secrets: {K_TOKEN: wandb}}
EOF
wait_until 20 "$CAIRN" dags show cached
"$CAIRN" trigger cached --wait >"$T/c1.out" 2>&1 || true
"$CAIRN" trigger cached --wait >"$T/c2.out" 2>&1 || true
C2=$(head -n1 "$T/c2.out")
check "the same secret: the cached result is used" [ "$(ti cached "$C2" cached c)" = true ]
check "the cache key is not the value" bash -c '! grep -rqaF "$1" "$2"' _ "$VALUE" "$T/s"
printf 'rotated-%s\n' "$RANDOM" >"$T/secrets/wandb"
"$CAIRN" trigger cached --wait >"$T/c3.out" 2>&1 || true
C3=$(head -n1 "$T/c3.out")
check "a rotated secret: the task runs again" [ "$(ti cached "$C3" cached c)" = false ]

# --- image: / is refused by the checker
cat >"$T/root.yaml" <<EOF
dag: rootimg
tasks:
  a: {command: [id], image: /}
EOF
set +e
VOUT=$("$CAIRN" validate "$T/root.yaml" 2>&1)
VRC=$?
set -e
check "image: / fails validation" [ "$VRC" != 0 ]
check "... with a hint to use image: host" grep -qF "image: host" <<<"$VOUT"

# --- a credential written in env: a warning pointing to secrets:
cat >"$T/literal.yaml" <<EOF
dag: literal
tasks:
  a: {command: [id], env: {WANDB_API_KEY: sk-live-123}}
EOF
set +e
LOUT=$("$CAIRN" validate "$T/literal.yaml" 2>&1)
LRC=$?
set -e
check "a literal WANDB_API_KEY in env is valid but warned about" \
    bash -c '[ "$1" = 0 ] && grep -qF "literal.yaml:3:" <<<"$2" && grep -qF "warning" <<<"$2" && grep -qF "secrets: {WANDB_API_KEY: NAME}" <<<"$2"' _ "$LRC" "$LOUT"

# --- without an authenticated link (no --token-file) no lease carries secrets
kill_wait "$PID_w1" TERM
kill_wait "$SCHED_PID" TERM
unset NNG_PORT HTTP_PORT
start_scheduler s2 --secrets-dir "$T/secrets"
start_worker w2
set +e
"$CAIRN" trigger secret --wait >"$T/noauth.out" 2>&1
NRC=$?
set -e
RUN5=$(head -n1 "$T/noauth.out")
check "without --token-file a task with secrets fails" [ "$NRC" != 0 ]
check "... saying the link is not authenticated" \
    grep -qF "it has secrets (wandb), which travel only over an authenticated worker link" <<<"$(ti error "$RUN5" secret use)"
check "... and it never ran" [ "$(ti attempts "$RUN5" secret use)" = 1 -a "$(ti exit_code "$RUN5" secret use)" = null ]

# --- mutual TLS authenticates the link as well: secrets go, without a token
kill_wait "$PID_w2" TERM
kill_wait "$SCHED_PID" TERM
unset NNG_PORT HTTP_PORT
"$CAIRN" certs init "$T/pki" --scheduler-name sched --worker w3 >"$T/certs.out"
P=$T/pki
mkdir -p "$T/s3" "$T/w3"
"$SCHED" --dags "$T/dags" --data "$T/s3" --listen "tls+tcp://127.0.0.1:0" --http 127.0.0.1:0 \
    --tls-cert "$P/scheduler.crt" --tls-key "$P/scheduler.key" --tls-ca "$P/ca.crt" \
    --secrets-dir "$T/secrets" >>"$T/s3.log" 2>&1 &
SCHED_PID=$!
PIDS+=("$SCHED_PID")
wait_until 10 grep -q CAIRN-START "$T/s3.log"
LINE=$(grep CAIRN-START "$T/s3.log" | tail -n 1)
NNG_URL=tls+tcp://127.0.0.1:$(sed -n 's/.* workers tls+tcp:\/\/127\.0\.0\.1:\([0-9]*\), http .*/\1/p' <<<"$LINE")
export CAIRN_SERVER=http://127.0.0.1:$(sed -n 's/.*, http 127\.0\.0\.1:\([0-9]*\), .*/\1/p' <<<"$LINE")
wait_http
"$WORKER" --scheduler "$NNG_URL" --data "$T/w3" --name w3 --tls-cert "$P/w3.crt" \
    --tls-key "$P/w3.key" --tls-ca "$P/ca.crt" --tls-server-name sched >>"$T/w3.log" 2>&1 &
PIDS+=("$!")
wait_until 20 grep -q CAIRN-WORKER-REGISTERED "$T/w3.log"
set +e
"$CAIRN" trigger secret --wait >"$T/tls.out" 2>&1
TLRC=$?
set -e
RUN6=$(head -n1 "$T/tls.out")
check "over mutual TLS (no token) the task with a secret runs" [ "$TLRC" = 0 ]
check "... and its log is masked" grep -qx "plain \*\*\* end" <<<"$("$CAIRN" logs "$RUN6" use --dag secret)"

finish
