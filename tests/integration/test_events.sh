#!/usr/bin/env bash
# Event triggers (docs/dag-yaml.md, "Event triggers"): a file dropped in a
# watched folder starts one run, not while it is still being written and
# not before `settle`, not again across a scheduler restart, and again when
# its content changes; a release of an upstream DAG starts a downstream run
# that sees the release's path and digest; `all:` waits for each of its
# events; a webhook with a bad or missing signature is refused (401) and
# creates nothing, a good one creates a run with the body's params, with no
# bearer token even when the API needs tokens.
source "$(dirname "$0")/lib.sh"

IN=$T/incoming
mkdir -p "$IN"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/hook.secret"
chmod 600 "$T/hook.secret"

put_dag up <<'YAML'
dag: up
defaults: {retries: 0}
params: {text: "v1"}
tasks:
  train:
    command: [sh, -c, "echo {{ params.text }} > $CAIRN_OUTPUTS/model.bin"]
    outputs: [model.bin]
    publish: [model.bin]
YAML
put_dag down <<'YAML'
dag: down
defaults: {retries: 0}
trigger:
  - on_publish: up/train
tasks:
  score:
    command: [sh, -c, "test -f {{ params.release_path }}/model.bin && echo {{ params.release_digest }}"]
YAML
put_dag files <<YAML
dag: files
defaults: {retries: 0}
trigger:
  on_file: {path: $IN, pattern: "*.csv", settle: 2s}
tasks:
  ingest:
    command: [sh, -c, "test \"\$(sha256sum < {{ params.file_path }} | cut -d' ' -f1)\" = {{ params.file_digest }}"]
YAML
put_dag hook <<YAML
dag: hook
defaults: {retries: 0}
params: {dataset: none}
trigger:
  - on_webhook: {secret_file: $T/hook.secret}
tasks:
  t:
    command: [echo, "{{ params.dataset }}"]
YAML
put_dag both <<YAML
dag: both
defaults: {retries: 0}
params: {dataset: none}
trigger:
  - all:
      - on_publish: up/train
      - on_webhook: {secret_file: $T/hook.secret}
tasks:
  t:
    command: [echo, "{{ params.release_id }}", "{{ params.dataset }}"]
YAML

nruns() { "$CAIRN" runs list --dag "$1" --json | jq '.runs | length'; }
runs_are() { test "$(nruns "$1")" = "$2"; }
newest() { "$CAIRN" runs list --dag "$1" --json | jq -r '.runs[0].run_id'; }
sign() { printf %s "$1" | openssl dgst -sha256 -hmac "$(cat "$T/hook.secret")" -r | cut -d' ' -f1; }
# post DAG BODY [SIGNATURE_HEADER] -> prints the status; the answer in $T/answer.json
post() {
    local extra=()
    [ -n "${3:-}" ] && extra=(-H "X-Cairn-Signature: $3")
    curl -s -o "$T/answer.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        "${extra[@]}" --data "$2" "$CAIRN_SERVER/api/v1/dags/$1/events"
}

check "cairn validate takes the triggers" "$CAIRN" validate -q "$T/dags"
mkdir -p "$T/lone"
cp "$T/dags/down.yaml" "$T/lone/"
check "  an on_publish naming a DAG not among the files checked is a warning with file:line:col" \
    bash -c '"$0" validate "$1" | grep -q "down.yaml:4:17: warning: .on_publish.: no DAG .up."' \
    "$CAIRN" "$T/lone"
check "  a misspelt kind is an error with a suggestion" bash -c \
    '! "$0" validate "$1" >"$2" && grep -q "3:5: error: unknown trigger .on_publsh." "$2" && grep -q "did you mean .on_publish." "$2"' \
    "$CAIRN" "$CAIRN_SRC/tests/fixtures/dag-errors/bad-trigger.yaml" "$T/validate.out"

start_scheduler s
start_worker w1 --isolation none
check "the API shows a DAG's triggers" test \
    "$(curl -sf "$CAIRN_SERVER/api/v1/dags/files" | jq -c '.triggers')" = \
    "[{\"all\":false,\"events\":[{\"kind\":\"on_file\",\"path\":\"$IN\",\"pattern\":\"*.csv\",\"settle_ms\":2000}]}]"
check "  and dags show" bash -c '"$0" dags show both | grep -Eq "^triggers +all\(on_publish up/train, on_webhook\)$"' "$CAIRN"

# --- on_file -----------------------------------------------------------
: >"$T/appending"
( while [ -e "$T/appending" ]; do echo "1,2,3" >>"$IN/a.csv"; sleep 0.1; done ) &
APPENDER=$!
PIDS+=("$APPENDER")
check "the scheduler watches the folder" wait_until 30 logged s "CAIRN-EVENT-WATCH.*files: watching $IN"
check "a file being appended to is seen growing" wait_until 30 test -s "$IN/a.csv"
early=0
for i in $(seq 1 30); do # three seconds of appends, more than settle
    [ "$(nruns files)" = 0 ] || early=1
    sleep 0.1
done
check "  no run while it is still being written" test "$early" = 0
rm -f "$T/appending"
wait "$APPENDER"
forget_pid "$APPENDER"
check "once it stays unchanged for settle, one run" wait_until 60 runs_are files 1
r1=$(newest files)
check "  it succeeds: the task saw the file's path and digest" test "$(wait_run "$r1" files 60)" = success
check "  run_type event, the event names the file and its digest" test \
    "$(rj "$r1" files '[.run_type, .event.kind, .event.path, .event.digest] | join(" ")')" = \
    "event on_file $IN/a.csv $(sha256sum <"$IN/a.csv" | cut -d' ' -f1)"
check "  params file_path and file_digest" test \
    "$(rj "$r1" files '.params.file_path + " " + .params.file_digest')" = \
    "$IN/a.csv $(sha256sum <"$IN/a.csv" | cut -d' ' -f1)"
mtime_ms=$(date -r "$IN/a.csv" +%s%3N)
created_ms=$(date -d "$(rj "$r1" files .created_at)" +%s%3N)
# (the scheduler measures settle from when it saw the last change, never
# before the change itself; 50 ms for the file system's coarser clock)
check "  created at least settle (2 s) after the file last changed" test $((created_ms - mtime_ms)) -ge 1950
check "  runs show prints the event" bash -c '"$0" runs show "$1" --dag files | grep -Eq "^event +on_file $2/a.csv \(sha256 [0-9a-f]{12}\)"' \
    "$CAIRN" "$r1" "$IN"
seen_again() { logged s "CAIRN-EVENT-SEEN.*files: $IN/a.csv"; }

kill_wait "$SCHED_PID"
start_scheduler s
check "after a restart the file is looked at again" wait_until 60 seen_again
check "  and starts no second run" runs_are files 1

echo "4,5,6" >>"$IN/a.csv"
check "a changed file starts a new run" wait_until 60 runs_are files 2
r2=$(newest files)
check "  with its new digest" test "$(rj "$r2" files .params.file_digest)" = "$(sha256sum <"$IN/a.csv" | cut -d' ' -f1)"
check "  that succeeds" test "$(wait_run "$r2" files 60)" = success
echo "x" >"$T/b.tmp"
echo "y" >"$IN/ignored.txt"
mv "$T/b.tmp" "$IN/b.csv"
check "a new file starts one more" wait_until 60 runs_are files 3
check "  for that file" test "$(rj "$(newest files)" files .params.file_path)" = "$IN/b.csv"
n0=$(grep -c "CAIRN-EVENT-SEEN.*files: $IN/a.csv has the digest" "$T/s.log" || true)
touch -d '+1 sec' "$IN/a.csv"
check "a file only touched (the same content) is read again" wait_until 60 bash -c \
    "[ \$(grep -c 'CAIRN-EVENT-SEEN.*files: $IN/a.csv has the digest' '$T/s.log') -gt $n0 ]"
check "  and starts no run" runs_are files 3
kill_wait "$SCHED_PID"
echo "z" >>"$IN/b.csv"
start_scheduler s
check "a file changed while the scheduler was down starts a run after the restart" \
    wait_until 60 runs_are files 4
check "  for that file, with its new digest" test "$(rj "$(newest files)" files '.params.file_path + " " + .params.file_digest')" = \
    "$IN/b.csv $(sha256sum <"$IN/b.csv" | cut -d' ' -f1)"

# killed just as an event made its run: the run and what the event took are
# committed together, so after the restart there is one run, never two
runs_for() { "$CAIRN" runs list --dag files --json | jq --arg p "$1" '[.runs[] | select(.params.file_path == $p)] | length'; }
one_run_for() { test "$(runs_for "$1")" = 1; }
seen_count() { grep -c "CAIRN-EVENT-SEEN.*files: $1 " "$T/s.log" || true; }
echo "c" >"$T/c.tmp" && mv "$T/c.tmp" "$IN/c.csv"
check "a new file's run is being created" wait_until 60 logged s "CAIRN-EVENT-RUN .* of files .*$IN/c.csv"
kill_wait "$SCHED_PID" KILL
start_scheduler s
check "  after a SIGKILL then, the file has one run" wait_until 60 one_run_for "$IN/c.csv"
n0=$(seen_count "$IN/c.csv")
kill_wait "$SCHED_PID"
start_scheduler s
check "  after one more restart the file is looked at again" \
    wait_until 60 bash -c "[ \$(grep -c 'CAIRN-EVENT-SEEN.*files: $IN/c.csv ' '$T/s.log') -gt $n0 ]"
check "  and it still has one run" one_run_for "$IN/c.csv"

# --- on_publish and all: ----------------------------------------------
ru=$("$CAIRN" trigger up --param text=hello)
check "the upstream run publishes" test "$(wait_run "$ru" up 60)" = success
check "the release starts a downstream run" wait_until 60 runs_are down 1
rd=$(newest down)
rel=$T/s/models/up/train/releases/$ru-a1
digest=$(cd "$rel" && sha256sum model.bin | sha256sum | cut -d' ' -f1)
check "  it sees the release's path and digest" test \
    "$(rj "$rd" down '.params.release_path + " " + .params.release_digest + " " + .params.release_id')" = \
    "$rel $digest $ru-a1"
check "  its event names the release" test \
    "$(rj "$rd" down '[.run_type, .event.kind, .event.source, .event.run_id] | join(" ")')" = "event on_publish up/train $ru"
check "  it succeeds" test "$(wait_run "$rd" down 60)" = success
check "  the task printed the digest" bash -c '"$0" logs "$1" score --dag down | grep -q "$2"' "$CAIRN" "$rd" "$digest"
check "all: has had one of its two events: no run yet" runs_are both 0
kill_wait "$SCHED_PID" KILL
start_scheduler s
check "  (after a SIGKILL the group still knows it: below)" runs_are both 0
check "  and the release starts no second downstream run" runs_are down 1

# --- on_webhook --------------------------------------------------------
body='{"dataset": "d1"}'
check "a webhook without a signature is refused: 401" test "$(post hook "$body")" = 401
check "  saying why" jq -e '.error.code == "unauthorized"' "$T/answer.json" >/dev/null
check "a webhook with a bad signature is refused: 401" \
    test "$(post hook "$body" "sha256=$(sign '{"dataset": "d2"}')")" = 401
check "a malformed signature: 401" test "$(post hook "$body" "sha1=abc")" = 401
check "  nothing was created" runs_are hook 0
check "  the refusals are logged" logged s "CAIRN-EVENT-REFUSED"
check "a signed webhook with an undeclared param: 400" \
    test "$(post hook '{"nope": 1}' "sha256=$(sign '{"nope": 1}')")" = 400
check "  nothing was created" runs_are hook 0
check "a signed webhook creates a run: 201" test "$(post hook "$body" "sha256=$(sign "$body")")" = 201
rh=$(jq -r .run_id "$T/answer.json")
check "  with the body's params" test "$(rj "$rh" hook '.run_type + " " + .params.dataset + " " + .event.kind')" = "event d1 on_webhook"
check "  it succeeds" test "$(wait_run "$rh" hook 60)" = success
check "a webhook for a DAG without on_webhook: 404" test "$(post down '{}' "sha256=$(sign '{}')")" = 404

body='{"dataset": "d3"}'
check "the webhook completes the all: group: a run" test "$(post both "$body" "sha256=$(sign "$body")")" = 201
rb=$(jq -r .run_id "$T/answer.json")
check "  with both events and their params" test \
    "$(rj "$rb" both '[.event.kind, (.event.events | map(.kind) | join(",")), .params.release_id, .params.dataset] | join(" ")')" = \
    "all on_publish,on_webhook $ru-a1 d3"
check "  it succeeds" test "$(wait_run "$rb" both 60)" = success
check "  the group starts over: another webhook alone is taken, no run (202)" \
    test "$(post both "$body" "sha256=$(sign "$body")")" = 202
check "  still one run" runs_are both 1

"$CAIRN" dags pause hook >/dev/null
body='{"dataset": "paused"}'
check "a signed webhook for a paused DAG: 409" test "$(post hook "$body" "sha256=$(sign "$body")")" = 409
check "  nothing was created" runs_are hook 1
"$CAIRN" dags unpause hook >/dev/null

# --- the webhook needs no bearer token when the API has tokens -----------
token=$("$CAIRN" tokens create ops --role operator --file "$T/tokens" 2>/dev/null)
kill_wait "$SCHED_PID"
start_scheduler s --api-tokens "$T/tokens"
export CAIRN_TOKEN=$token
body='{"dataset": "d4"}'
check "with --api-tokens, a trigger without a token is 401" test \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$CAIRN_SERVER/api/v1/dags/hook/trigger")" = 401
check "  a bad signature is still 401" test "$(post hook "$body" "sha256=$(sign '{}')")" = 401
check "  a signed webhook without a token creates a run" test "$(post hook "$body" "sha256=$(sign "$body")")" = 201
check "  a cross-origin webhook is refused by the Origin check (403)" test \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' \
        -H 'Content-Type: application/json' -H "X-Cairn-Signature: sha256=$(sign "$body")" \
        --data "$body" "$CAIRN_SERVER/api/v1/dags/hook/events")" = 403
check "  two webhook runs in all" runs_are hook 2
finish
