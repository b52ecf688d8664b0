#!/usr/bin/env bash
# The web UI in a real browser: Debian's chromium driven by playwright-core
# (tests/ui/, installed by scripts/install-deps.sh) against a live scheduler
# and worker. tests/ui/ui.test.mjs opens every view, checks what it shows
# through the data-task / data-state / data-view attributes, follows a live
# log, and uses the actions (trigger with params, clear, retry, cancel,
# pause), each checked through the API, and the UI behind nginx under the
# path prefix /cairn/ui/. Screenshots of a failing view are
# written to the test folder (kept on failure).
source "$(dirname "$0")/lib.sh"

UI=$CAIRN_SRC/tests/ui
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/install-deps.sh)"; exit 1; }
if [ ! -x /usr/bin/chromium ] || [ ! -d "$UI/node_modules/playwright-core" ]; then
    echo "chromium or tests/ui/node_modules is missing: run scripts/install-deps.sh" >&2
    exit 1
fi

# score's accuracy is 0.8 + the day of the month / 100
cat >"$T/score.sh" <<'SH'
d=$(echo "$1" | cut -c9-10); d=${d#0}
echo "{\"acc\": 0.$((80 + d))}" >"$CAIRN_OUTPUTS/m.json"
SH
put_dag ui <<YAML
dag: ui
description: the browser test's pipeline
tags: [test, ml]
params:
  items: [a, b, c]
  lr: 0.1
  label: base
  deep: false
tasks:
  prep:
    command: [sh, -c, "echo prep {{ params.label }} lr={{ params.lr }}; echo data > \$CAIRN_OUTPUTS/data.txt"]
    outputs: [data.txt]
  train:
    needs: [prep]
    map: {over: params.items}
    command: [sh, -c, "echo training {{ item }}"]
  flaky:
    needs: [prep]
    retries: 1
    retry_delay: 1s
    env: {MARK: "$T/flaky-{{ ds }}"}
    command: [sh, -c, "if [ -f \$MARK ]; then echo second try; else touch \$MARK; echo first try fails >&2; exit 3; fi"]
  score:
    needs: [train, flaky]
    inputs: {data: prep/data.txt}
    command: [sh, $T/score.sh, "{{ ds }}"]
    outputs: [m.json]
    metrics: m.json
YAML
put_dag fail <<YAML
dag: fail
tasks:
  first:
    command: [sh, -c, "echo fine"]
  breaks:
    needs: [first]
    command: [sh, -c, "if [ -f $T/fixed ]; then echo fixed; else echo broken >&2; exit 2; fi"]
  after:
    needs: [breaks]
    command: [sh, -c, "echo after"]
YAML
put_dag slow <<'YAML'
dag: slow
tasks:
  ticker:
    command: [sh, -c, "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.5; done; echo done ticking"]
YAML
put_dag daily <<'YAML'
dag: daily
schedule: "@daily"
start_date: 2026-01-01
catchup: false
tasks:
  hello:
    command: [echo, "{{ ds }}"]
YAML
put_dag long <<'YAML'
dag: long
tasks:
  wait:
    command: [sleep, "300"]
YAML
# a DAG that publishes a model (three releases: two dates, then an older one)
put_dag pub <<'YAML'
dag: pub
tasks:
  fit:
    command: [sh, -c, "echo model of {{ ds }} > $CAIRN_OUTPUTS/model.txt"]
    outputs: [model.txt]
    publish: [model.txt]
YAML
# a DAG that runs when pub publishes a release that takes latest (an event run)
put_dag onpub <<'YAML'
dag: onpub
trigger: {on_publish: pub/fit}
tasks:
  use: {command: [sh, -c, "echo using {{ params.release_id }}"]}
YAML
# a DAG whose file changes after its first run (the run keeps version 1)
put_dag versioned <<'YAML'
dag: versioned
params:
  n: 1
tasks:
  say:
    command: [echo, "first version {{ params.n }}"]
YAML
# 1,000 runs of a DAG whose tasks no worker takes (they stay queued)
put_dag many <<'YAML'
dag: many
max_active_runs: 1000
tasks:
  a:
    labels: {pool: nobody}
    command: ["true"]
  b:
    needs: [a]
    labels: {pool: nobody}
    command: ["true"]
YAML
# 300 tasks x 30 runs for the virtualised grid: t0 waits for a worker no one
# has, the others wait for t0 (pending)
python3 - "$T/dags/wide.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("dag: wide\nmax_active_runs: 30\ntasks:\n  t0:\n    labels: {pool: nobody}\n"
            "    command: [\"true\"]\n")
    for i in range(1, 300):
        f.write(f"  t{i}:\n    needs: [t0]\n    command: [\"true\"]\n")
PY
# 10,000 tasks: 10 layers of 1,000, each task needing one of the layer before
python3 - "$T/dags/big.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("dag: big\ntasks:\n")
    for i in range(10000):
        f.write(f"  t{i}:\n    command: [\"true\"]\n")
        if i >= 1000:
            f.write(f"    needs: [t{i - 1000}]\n")
PY
start_scheduler s
start_worker w1 --isolation none --slots 4
r1=$("$CAIRN" trigger ui --logical-date 2026-01-05)
r2=$("$CAIRN" trigger ui --logical-date 2026-01-06)
rf=$("$CAIRN" trigger fail --logical-date 2026-01-05)
rp1=$("$CAIRN" trigger pub --logical-date 2026-03-01)
rp2=$("$CAIRN" trigger pub --logical-date 2026-03-02)
check "the pub runs succeed" test "$(wait_run "$rp1" pub)/$(wait_run "$rp2" pub)" = success/success
rp0=$("$CAIRN" trigger pub --logical-date 2026-02-01)
check "the older pub run succeeds (its release does not take latest)" \
    test "$(wait_run "$rp0" pub)" = success
check "the middle release is promoted to production" \
    "$CAIRN" models promote "pub/fit/$rp1-a1" --stage production
check "the ui runs succeed" test "$(wait_run "$r1" ui)/$(wait_run "$r2" ui)" = success/success
check "the fail run fails" test "$(wait_run "$rf" fail)" = failed
check "the big DAG loaded with its 10,000 tasks" \
    test "$(curl -sf "$CAIRN_SERVER/api/v1/dags/big" | jq '.task_list | length')" = 10000

for d in $(seq -w 1 30); do
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d "{\"logical_date\": \"2025-06-${d}T00:00:00Z\"}" "$CAIRN_SERVER/api/v1/dags/wide/trigger"
done
check "the wide DAG's grid is 300 tasks x 30 runs" test "$(curl -sf \
    "$CAIRN_SERVER/api/v1/dags/wide/grid" | jq -c '[(.tasks | length), (.runs | length)]')" = '[300,30]'

# the grid endpoint, checked on its own
g=$(curl -sf "$CAIRN_SERVER/api/v1/dags/ui/grid?limit=10")
check "grid: runs oldest first, tasks in file order, a state each" \
    test "$(jq -c '[.tasks, [.runs[].run_id], [.runs[].states]]' <<<"$g")" = \
    "$(jq -nc --arg a "$r1" --arg b "$r2" '[["prep","train","flaky","score"],[$a,$b],
       [["success","success","success","success"],["success","success","success","success"]]]')"
check "grid: limit keeps the newest" \
    test "$(curl -sf "$CAIRN_SERVER/api/v1/dags/ui/grid?limit=1" | jq -r '.runs[0].run_id')" = "$r2"
check "grid: a bad limit is 400" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/dags/ui/grid?limit=x")" = 400
check "grid: an unknown DAG is 404" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/dags/nope/grid")" = 404
check "the DAG detail lists its params, typed" \
    test "$(curl -sf "$CAIRN_SERVER/api/v1/dags/ui" | jq -c '[.params[] | [.name, .type]]')" = \
    '[["items","list"],["lr","number"],["label","string"],["deep","bool"]]'

# A DAG version's YAML source: the one a run used, after the file changed
rv=$("$CAIRN" trigger versioned)
check "the versioned run succeeds" test "$(wait_run "$rv" versioned)" = success
v1=$(curl -sf "$CAIRN_SERVER/api/v1/runs/$rv?dag=versioned" | jq -r .dag_version)
cp "$T/dags/versioned.yaml" "$T/versioned-v1.yaml"
cat >"$T/dags/versioned.yaml" <<'YAML'
dag: versioned
params:
  n: 2
  extra: x
tasks:
  say:
    command: [echo, "second version {{ params.n }} {{ params.extra }}"]
YAML
vcur() { curl -sf "$CAIRN_SERVER/api/v1/dags/versioned" | jq -r .version; }
check "the changed file loads as a new version" wait_until 30 bash -c \
    "[ \"\$(curl -sf $CAIRN_SERVER/api/v1/dags/versioned | jq -r .version)\" != $v1 ]"
v2=$(vcur)
vj=$(curl -sf "$CAIRN_SERVER/api/v1/dags/versioned/versions/$v1")
check "versions: the run's version is its YAML byte for byte" \
    cmp <(jq -j .source <<<"$vj") "$T/versioned-v1.yaml"
check "versions: with its params and defaults, and not current" \
    test "$(jq -c '[.version == "'"$v1"'", .current, .params]' <<<"$vj")" = \
    '[true,false,[{"name":"n","default":"1","type":"number"}]]'
check "versions: the current version is current" test "$(curl -sf \
    "$CAIRN_SERVER/api/v1/dags/versioned/versions/$v2" | jq -c '[.current, [.params[].name]]')" = \
    '[true,["n","extra"]]'
check "versions: an unknown version is 404" test "$(curl -s -o /dev/null -w '%{http_code}' \
    "$CAIRN_SERVER/api/v1/dags/versioned/versions/0000")" = 404
check "versions: a version of another DAG is 404" test "$(curl -s -o /dev/null -w '%{http_code}' \
    "$CAIRN_SERVER/api/v1/dags/ui/versions/$v1")" = 404

# Polled answers carry an ETag; asked again with it, nothing changed: 304, no body
etag_of() { curl -sf -D - -o /dev/null "$1" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p'; }
for path in "runs?dag=ui" "dags/ui/grid" "runs/$r1?dag=ui&tasks=all" "dags"; do
    tag=$(etag_of "$CAIRN_SERVER/api/v1/$path")
    check "etag: GET $path has one" test -n "$tag"
    check "etag: GET $path again with If-None-Match is 304 with no body" test \
        "$(curl -s -H "If-None-Match: $tag" -w '%{http_code} %{size_download}' -o /dev/null \
           "$CAIRN_SERVER/api/v1/$path")" = "304 0"
done
tag=$(etag_of "$CAIRN_SERVER/api/v1/runs?dag=ui")
check "etag: another tag gets the whole answer" test "$(curl -s -H 'If-None-Match: "0000"' \
    -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/runs?dag=ui")" = 200
check "etag: the tag in a list, or W/, still matches" test "$(curl -s \
    -H "If-None-Match: \"x\", W/$tag" -o /dev/null -w '%{http_code}' \
    "$CAIRN_SERVER/api/v1/runs?dag=ui")" = 304
check "etag: HEAD with the tag is 304 too" test "$(curl -s -I -H "If-None-Match: $tag" \
    -o /dev/null -w '%{http_code}' "$CAIRN_SERVER/api/v1/runs?dag=ui")" = 304

# The page is built from scheduler/ui/ (cmake/embed.cmake): index.html with the
# file of each style sheet line in a <style>, and the files of its script lines
# in one <script>, an empty line between two. Expanded here on its own, it must
# be the served page byte for byte, so the embedded copy cannot go stale.
curl -sf "$CAIRN_SERVER/" >"$T/ui.html"
expand_page() { # expand_page DIR
    local line in_script=0
    local css='^<link rel="stylesheet" href="([A-Za-z0-9_.-]+)">$'
    local js='^<script src="([A-Za-z0-9_.-]+)"></script>$'
    while IFS= read -r line; do
        if [[ $line =~ $js ]]; then
            if [ "$in_script" = 0 ]; then echo "<script>"; else echo; fi
            in_script=1
            cat "$1/${BASH_REMATCH[1]}"
            continue
        fi
        if [ "$in_script" = 1 ]; then echo "</script>"; in_script=0; fi
        if [[ $line =~ $css ]]; then
            echo "<style>"; cat "$1/${BASH_REMATCH[1]}"; echo "</style>"
        else
            printf '%s\n' "$line"
        fi
    done <"$1/index.html"
    if [ "$in_script" = 1 ]; then echo "</script>"; fi
}
expand_page "$CAIRN_SRC/scheduler/ui" >"$T/ui-expected.html"
check "the served page is scheduler/ui/ as it is now, byte for byte" \
    cmp "$T/ui-expected.html" "$T/ui.html"
check "the embedded dagre is the one tests/ui/package-lock.json pins" \
    cmp "$CAIRN_SRC/scheduler/ui/dagre.min.js" "$UI/node_modules/@dagrejs/dagre/dist/dagre.min.js"
outside='<link|<script [^>]|(src|action)="?(https?:)?//|(url|fetch|import)\(["'"'"'`]?(https?:)?//'
check "the served page loads nothing from elsewhere" \
    bash -c '! grep -Eiq "$1" "$2"' _ "$outside" "$T/ui.html"

# A second scheduler, on the same DAGs, with tokens: a viewer sees no
# action buttons, an operator does.
main_server=$CAIRN_SERVER
viewer=$("$CAIRN" tokens create v1 --role viewer --file "$T/tokens")
operator=$("$CAIRN" tokens create o1 --role operator --file "$T/tokens")
unset HTTP_PORT NNG_PORT
start_scheduler s2 --api-tokens "$T/tokens" --dags "$T/dags"
auth_server=$CAIRN_SERVER
export CAIRN_SERVER=$main_server
check "whoami: a viewer token says viewer" test "$(curl -sf -H "Authorization: Bearer $viewer" \
    "$auth_server/api/v1/whoami" | jq -c '[.auth, .name, .role]')" = '[true,"v1","viewer"]'
check "whoami: without tokens, admin" test "$(curl -sf "$CAIRN_SERVER/api/v1/whoami" |
    jq -c '[.auth, .role]')" = '[false,"admin"]'

# nginx in front, serving the UI under the path prefix /cairn/ui/
N=$T/nginx
mkdir -p "$N/logs" "$N/tmp"
NPORT=$(free_port)
cat >"$N/nginx.conf" <<EOF2
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
    access_log $N/logs/access.log;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        location /cairn/ui/ {
            proxy_pass http://$(sed 's|^http://||' <<<"$CAIRN_SERVER")/;
            proxy_set_header Host \$host;
        }
    }
}
EOF2
nginx -p "$N" -c "$N/nginx.conf" -e "$N/logs/error.log" -g 'daemon off; master_process off;' \
    >"$T/nginx.log" 2>&1 &
PIDS+=("$!")
prefix_url=http://127.0.0.1:$NPORT/cairn/ui/
check "nginx serves the UI under /cairn/ui/" wait_until 10 curl -sf -o /dev/null "$prefix_url"
check "and the API under /cairn/ui/api/v1/" test "$(curl -sf "${prefix_url}api/v1/dags/ui" | jq -r .dag)" = ui

out=$(cd "$UI" && OUT="$T" RUN1="$r1" RUN2="$r2" RUNF="$rf" FIXED="$T/fixed" RUNV="$rv" \
      PREFIX_URL="$prefix_url" PUB_RUNS="$rp0 $rp1 $rp2" \
      AUTH_SERVER="$auth_server" VIEWER_TOKEN="$viewer" OPERATOR_TOKEN="$operator" \
      timeout 100 node ui.test.mjs 2>&1) && st=0 || st=$?
echo "$out"
check "the browser checks pass ($(grep -c '^ok' <<<"$out") passed, $(grep -c '^not ok' <<<"$out") failed)" \
    test "$st" = 0
finish
