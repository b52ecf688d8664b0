#!/usr/bin/env bash
# The run JSON through the real scheduler and CLI when the store holds
# damaged run records, written with mdb_load while the scheduler is stopped
# (valid JSON of the wrong shape, a record version from a newer Cairn):
# asked for, each is a 500 naming it, logged as CAIRN-RECORD-BAD; the runs
# list leaves them out and says how many it read and left out.
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
      "200/[\"$(printf '%s\n' "$R1" "$R2" | sort | paste -sd,)\",1]" ]
check "  and logs what it skipped" logged s "CAIRN-RECORD-BAD.*skipping the run at p/broken"
check "the good runs still answer" [ "$(rj "$R1" p .state)" = success ]
finish
