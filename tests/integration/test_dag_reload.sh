#!/usr/bin/env bash
# DAG files changing under a running scheduler: a file broken while it
# runs (the error with file:line:col in the API and `cairn dags list`; the
# last good version keeps running), then fixed (the new version loads); a
# file that never loaded; a new file dropped in.
source "$(dirname "$0")/lib.sh"

put_dag evolve <<'EOF'
dag: evolve
tasks:
  say: {command: [echo, v1]}
EOF
put_dag steady <<'EOF'
dag: steady
tasks:
  say: {command: [echo, steady]}
EOF
# never loads: task 'a' (3:3) has no command, 'comand' (4:5) is unknown
put_dag broken <<'EOF'
dag: broken
tasks:
  a:
    comand: [echo, hi]
EOF

start_scheduler s
start_worker w1 --isolation none

dag_field() { # dag_field DAG JQ
    "$CAIRN" dags list --json | jq -r --arg d "$1" ".dags[] | select(.dag == \$d) | $2"
}
run_says() { # run_says DAG -> what its task printed
    local r
    r=$("$CAIRN" trigger "$1") && [ "$(wait_run "$r" "$1" 20)" = success ] &&
        "$CAIRN" logs "$r" say --dag "$1"
}

check "a file that never loaded is listed without a version" [ "$(dag_field broken .version)" = null ]
check "...with its errors at their line and column" \
    [ "$(dag_field broken '[.errors[] | "\(.file):\(.line):\(.column)"] | join(" ")')" = "$T/dags/broken.yaml:3:3 $T/dags/broken.yaml:4:5" ]
check "...and a suggestion for the misspelt key" \
    [ "$(dag_field broken '.errors[] | select(.line == 4) | .hint')" = "did you mean 'command'?" ]
check "the good files loaded without errors" \
    [ "$(dag_field evolve '.errors | length')$(dag_field steady '.errors | length')" = 00 ]
check "evolve version 1 runs" [ "$(run_says evolve)" = v1 ]
V1=$(dag_field evolve .version)

# break the file while the scheduler runs: a YAML syntax error on line 3
cat >"$T/dags/evolve.yaml" <<'EOF'
dag: evolve
tasks:
  say: {command: [echo, v2]
EOF
check "the broken file's error shows up" wait_until 10 bash -c "[ \"\$($CAIRN dags list --json | jq '.dags[] | select(.dag == \"evolve\") | .errors | length')\" -gt 0 ]"
ERR=$(dag_field evolve '.errors[0] | "\(.file):\(.line):\(.column)"')
check "the error names the file, line and column ($ERR)" \
    grep -Eq "^$T/dags/evolve.yaml:[34]:[0-9]+$" <<<"$ERR"
check "the last good version is kept" [ "$(dag_field evolve .version)" = "$V1" ]
"$CAIRN" dags list >"$T/list.txt"
check "dags list prints the error as FILE:LINE:COL: message" \
    grep -Eq "^$T/dags/evolve.yaml:[34]:[0-9]+: " "$T/list.txt"
check "dags list counts the errors" grep -Eq "^evolve +- +no +1 +${V1:0:12} +1$" "$T/list.txt"
check "the scheduler logged it" logged s "CAIRN-DAG-INVALID.*evolve.yaml"
check "triggering runs the last good version" [ "$(run_says evolve)" = v1 ]
check "the other DAGs are untouched" [ "$(run_says steady)" = steady ]

# fix it with a new version
cat >"$T/dags/evolve.yaml" <<'EOF'
dag: evolve
tasks:
  say: {command: [echo, v2]}
EOF
check "the fixed file loads" wait_until 10 bash -c "[ \"\$($CAIRN dags list --json | jq -r '.dags[] | select(.dag == \"evolve\") | .errors | length')\" = 0 ]"
check "with a new version" [ "$(dag_field evolve .version)" != "$V1" ]
check "the new version runs" [ "$(run_says evolve)" = v2 ]
check "the runs keep the version they ran" \
    [ "$("$CAIRN" runs list --dag evolve --json | jq -r '[.runs[].dag_version] | unique | length')" = 2 ]

# a new file dropped in loads without a restart
put_dag newcomer <<'EOF'
dag: newcomer
tasks:
  say: {command: [echo, new]}
EOF
check "a new file is picked up" wait_until 10 bash -c "$CAIRN dags list --json | jq -e '.dags[] | select(.dag == \"newcomer\" and .version != null)'"
check "and runs" [ "$(run_says newcomer)" = new ]
# folders inside the DAG folder are searched too (not hidden ones)
mkdir -p "$T/dags/team/sub" "$T/dags/.hidden"
printf 'dag: nested\ntasks:\n  say: {command: [echo, nested]}\n' >"$T/dags/team/sub/nested.yaml"
printf 'dag: hidden\ntasks:\n  say: {command: [echo, hidden]}\n' >"$T/dags/.hidden/hidden.yaml"
check "a file in a subfolder is picked up" wait_until 10 bash -c "$CAIRN dags list --json | jq -e '.dags[] | select(.dag == \"nested\" and .version != null)'"
check "and runs" [ "$(run_says nested)" = nested ]
check "a hidden folder is not searched" bash -c "! $CAIRN dags list --json | jq -e '.dags[] | select(.dag == \"hidden\")'"
check "the scheduler survived all of it" kill -0 "$SCHED_PID"
finish
