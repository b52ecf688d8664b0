#!/usr/bin/env bash
# `cairn standalone` runs a scheduler and a worker in the foreground; one
# SIGTERM stops both.
source "$(dirname "$0")/lib.sh"
put_dag hello < "$CAIRN_SRC/examples/hello/hello.yaml"
sed -i 's|^schedule:.*||' "$T/dags/hello.yaml"
HTTP_PORT=$(free_port)
NNG_PORT=$(free_port)
export CAIRN_SERVER=http://127.0.0.1:$HTTP_PORT
"$CAIRN" standalone --dags "$T/dags" --data "$T/sa" --http "127.0.0.1:$HTTP_PORT" \
    --listen "tcp://127.0.0.1:$NNG_PORT" --slots 2 >"$T/standalone.log" 2>&1 &
SA=$!
PIDS+=("$SA")
check "the API comes up" wait_http
check "its worker registers" wait_until 10 bash -c '"$0" workers --json | jq -e ".workers[] | select(.name==\"standalone\" and .state==\"alive\")"' "$CAIRN"
check "a DAG runs in containers" "$CAIRN" trigger hello --wait
kill_wait "$SA" TERM
check "SIGTERM stops it cleanly (exit $EXIT_STATUS)" test "$EXIT_STATUS" = 0
check "no scheduler or worker of it is left" bash -c '! pgrep -f "$0/sa/" >/dev/null' "$T"
check "a missing DAG folder is a clear error" bash -c '"$0" standalone --dags /nonexistent 2>&1 | grep -q "cannot read the DAG folder"' "$CAIRN"
finish
