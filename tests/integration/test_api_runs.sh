#!/usr/bin/env bash
# The run JSON through the real scheduler and CLI: params_effective (every
# param of the run's DAG version, its overrides applied) in a trigger's
# answer, for a run in memory, for a finished run read back from LMDB after
# a restart, in the runs list, and after the DAG file changed (a run keeps
# its version's params). Then damaged run records written into the store
# with mdb_load while the scheduler is stopped (valid JSON of the wrong
# shape, a record version from a newer Cairn): asked for, each is a 500
# naming it, logged as CAIRN-RECORD-BAD; the runs list leaves them out.
source "$(dirname "$0")/lib.sh"

put_dag p <<'YAML'
dag: p
params: {lr: 0.1, model: "tree", epochs: 3}
tasks:
  fit: {command: [sh, -c, "echo lr={{ params.lr }} model={{ params.model }} epochs={{ params.epochs }}"]}
YAML

start_scheduler s
start_worker w1 --slots 2 --isolation none

R1=$("$CAIRN" trigger p --param lr=0.5 --param model=forest)
R2=$("$CAIRN" trigger p)
check "both runs succeed" [ "$(wait_run "$R1" p 30) $(wait_run "$R2" p 30)" = "success success" ]

check "overrides apply over the defaults, in the DAG's order, as text" \
    [ "$(rj "$R1" p '.params_effective | tojson')" = '{"lr":"0.5","model":"forest","epochs":"3"}' ]
check "  params stays the overrides alone" \
    [ "$(rj "$R1" p '.params | tojson')" = '{"lr":"0.5","model":"forest"}' ]
check "  the command was rendered with the same values" \
    grep -qx "lr=0.5 model=forest epochs=3" <("$CAIRN" logs "$R1" fit --dag p)
check "a run without overrides has the defaults" \
    [ "$(rj "$R2" p '.params_effective | tojson')" = '{"lr":"0.1","model":"tree","epochs":"3"}' ]
check "the runs list has params_effective for every run" \
    [ "$(curl -sf "$CAIRN_SERVER/api/v1/runs?dag=p" | jq -c '[.runs[].params_effective.lr]')" = '["0.1","0.5"]' ]

# an override has its default's type: lr and epochs are numbers
BAD=$("$CAIRN" trigger p --param lr=fast 2>&1) && BRC=0 || BRC=$?
check "a number param given a word is refused, naming it and its default" \
    bash -c '[ "$1" != 0 ] && grep -qF "param '"'"'lr'"'"' takes a number (its default is 0.1), got '"'"'fast'"'"'" <<<"$2"' _ "$BRC" "$BAD"
check "  the API answers 400 bad_request for it" [ "$(curl -s -o /dev/null -w '%{http_code}' \
    -X POST -H 'Content-Type: application/json' -d '{"params": {"epochs": "many"}}' \
    "$CAIRN_SERVER/api/v1/dags/p/trigger")" = 400 ]
check "  and no run was made" [ "$(curl -sf "$CAIRN_SERVER/api/v1/runs?dag=p" | jq '.runs | length')" = 2 ]

# the trigger's answer is the run as the engine holds it in memory
check "the trigger's answer has it" [ "$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"params": {"epochs": 9}, "logical_date": "2026-03-01"}' "$CAIRN_SERVER/api/v1/dags/p/trigger" |
    jq -c .params_effective)" = '{"lr":"0.1","model":"tree","epochs":"9"}' ]
check "  and so has the run afterwards" \
    [ "$(rj manual__2026-03-01T00:00:00Z p .params_effective.epochs)" = 9 ]
wait_run manual__2026-03-01T00:00:00Z p 30 >/dev/null

# finished runs come back from LMDB alone
kill_wait "$SCHED_PID"
start_scheduler s
check "after a restart, a stored run has the same params_effective" \
    [ "$(rj "$R1" p '.params_effective | tojson')" = '{"lr":"0.5","model":"forest","epochs":"3"}' ]

# a new version of the file: old runs keep their version's params
put_dag p <<'YAML'
dag: p
params: {lr: 0.2, batch: 8}
tasks:
  fit: {command: [sh, -c, "echo lr={{ params.lr }} batch={{ params.batch }}"]}
YAML
check "the new version loads" wait_until 10 bash -c \
    "$CAIRN dags list --json | jq -e '.dags[] | select(.dag == \"p\" and .version != \"$(rj "$R1" p .dag_version)\")'"
check "a run keeps the params of its own DAG version" \
    [ "$(rj "$R2" p '.params_effective | tojson')" = '{"lr":"0.1","model":"tree","epochs":"3"}' ]
R3=$("$CAIRN" trigger p --param batch=16)
wait_run "$R3" p 30 >/dev/null
check "a run of the new version has the new params" \
    [ "$(rj "$R3" p '.params_effective | tojson')" = '{"lr":"0.2","batch":"16"}' ]

# damaged records: written while the scheduler is stopped (it is the only
# writer while it runs); keys are dag 0x1f run_id (mdb_load -T: \1f)
kill_wait "$SCHED_PID"
mdb_load -T -s runs "$T/s/state" <<'EOF'
p\1fbroken
{"v":1,"dag":"p","run_id":"broken","state":["running"],"dag_version":"x"}
p\1ffuture
{"v":99,"dag":"p","run_id":"future","state":"success","dag_version":"x"}
EOF
start_scheduler s
api() { curl -s -o "$T/answer" -w '%{http_code}' "$CAIRN_SERVER$1"; }
check "a run record of the wrong shape is a 500" [ "$(api "/api/v1/runs/broken?dag=p")" = 500 ]
check "  in the API's error shape, naming the record and the decoder's reason" \
    [ "$(jq -r '"\(.error.code): \(.error.message)"' "$T/answer")" = \
      "internal: run 'broken' of DAG 'p' cannot be read: run record: field 'state' must be a string" ]
check "  and it is logged" logged s "CAIRN-RECORD-BAD.*run 'broken' of DAG 'p' cannot be read"
check "  also when the run is looked up without its DAG" [ "$(api /api/v1/runs/broken)" = 500 ]
check "  the CLI says so and fails" bash -c \
    "out=\$($CAIRN runs show broken --dag p 2>&1); [ \$? -ne 0 ] && grep -q \"field 'state' must be a string\" <<<\"\$out\""
check "a record from a newer Cairn is a 500 with the version" \
    [ "$(api "/api/v1/runs/future?dag=p")" = 500 ]
check "  saying which version" \
    grep -q "run 'future' of DAG 'p' cannot be read: run record has record version 99" "$T/answer"
check "  without the DAG too" [ "$(api /api/v1/runs/future)" = 500 ]
check "the runs list leaves both out and counts the one it read" \
    [ "$(api "/api/v1/runs?dag=p")/$(jq -c '[([.runs[].run_id] | sort | join(",")), .skipped]' "$T/answer")" = \
      "200/[\"$(printf '%s\n' "$R1" "$R2" "$R3" manual__2026-03-01T00:00:00Z | sort | paste -sd,)\",1]" ]
check "  and logs what it skipped" logged s "CAIRN-RECORD-BAD.*skipping the run at p/broken"
check "the good runs still answer" [ "$(rj "$R1" p .state)" = success ]
finish
