#!/usr/bin/env bash
# Retries and backoff through the real scheduler and a worker (isolation
# none: only scheduling is under test): a task that fails twice and then
# succeeds, the spacing of its attempts, the max_retry_delay cap, a task
# that runs out of retries and what that does to its downstream tasks
# and its run.
source "$(dirname "$0")/lib.sh"

put_dag retry <<EOF
dag: retry
tasks:
  flaky:
    retries: 3
    retry_delay: 1s
    retry_backoff: 2
    command: [sh, -c, 'n=\$(cat $T/count 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n >$T/count;
      echo "try \$n"; [ \$n -ge 3 ]']
  capped:
    retries: 2
    retry_delay: 1s
    retry_backoff: 10
    max_retry_delay: 1500ms
    command: [sh, -c, 'exit 1']
  after_flaky:
    needs: [flaky]
    command: ["true"]
EOF

put_dag doomed <<'EOF'
dag: doomed
tasks:
  always:
    retries: 1
    retry_delay: 1s
    command: [sh, -c, 'echo "attempt $CAIRN_ATTEMPT"; exit 3']
  child:
    needs: [always]
    command: ["true"]
  grandchild:
    needs: [child]
    command: ["true"]
  bystander:
    command: ["true"]
EOF

start_scheduler s
start_worker w1 --slots 4 --isolation none

RETRY=$("$CAIRN" trigger retry)
DOOMED=$("$CAIRN" trigger doomed)
check "run retry ended failed (capped never succeeds)" [ "$(wait_run "$RETRY" retry 30)" = failed ]
check "run doomed failed" [ "$(wait_run "$DOOMED" doomed 30)" = failed ]

# --- fails twice, then succeeds -------------------------------------------
check "flaky succeeded" [ "$(ti state "$RETRY" retry flaky)" = success ]
check "flaky took 3 attempts" [ "$(ti attempts "$RETRY" retry flaky)" = 3 ]
check "flaky ran exactly 3 times" [ "$(cat "$T/count")" = 3 ]
check "flaky's downstream ran" [ "$(ti state "$RETRY" retry after_flaky)" = success ]
A=$(attempts "$RETRY" retry flaky)
check "3 attempt records: failed, failed, success" \
    [ "$(jq -r '[.attempts[].state] | join(",")' <<<"$A")" = "failed,failed,success" ]
check "the failed attempts have exit code 1" \
    [ "$(jq -r '[.attempts[].exit_code] | join(",")' <<<"$A")" = "1,1,0" ]
# seconds between the end of attempt N and the start of attempt N+1
gaps() {
    jq -r 'def t: (sub("\\.[0-9]+Z$"; "Z") | fromdate)
                  + ((capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber) / 1000);
           [.attempts[] | {s: (.started_at | t), e: (.ended_at | t)}]
           | [range(1; length) as $i | .[$i].s - .[$i - 1].e | tostring] | join(" ")'
}
read -r G1 G2 <<<"$(gaps <<<"$A")"
echo "# flaky: gaps between attempts ${G1}s ${G2}s"
check "the first retry waited retry_delay (>= 1 s)" awk -v g="$G1" 'BEGIN{exit !(g >= 0.95)}'
check "the second retry waited retry_delay * backoff (>= 2 s)" \
    awk -v g="$G2" 'BEGIN{exit !(g >= 1.95)}'
check "the second wait was longer than the first" awk -v a="$G1" -v b="$G2" 'BEGIN{exit !(b > a + 0.5)}'
check "the waits were not much longer than asked" \
    awk -v a="$G1" -v b="$G2" 'BEGIN{exit !(a < 3 && b < 4)}'
check "logs of attempt 1 and 3" \
    [ "$("$CAIRN" logs "$RETRY" flaky --dag retry --attempt 1)/$("$CAIRN" logs "$RETRY" flaky --dag retry)" = "try 1/try 3" ]

# --- max_retry_delay caps the backoff --------------------------------------
A=$(attempts "$RETRY" retry capped)
read -r G1 G2 <<<"$(gaps <<<"$A")"
echo "# capped: gaps between attempts ${G1}s ${G2}s"
check "capped made 3 attempts" [ "$(jq '.attempts | length' <<<"$A")" = 3 ]
check "capped failed" [ "$(ti state "$RETRY" retry capped)" = failed ]
check "the capped wait is at least max_retry_delay" awk -v g="$G2" 'BEGIN{exit !(g >= 1.45)}'
check "the capped wait is not retry_delay * backoff" awk -v g="$G2" 'BEGIN{exit !(g < 5)}'

# --- out of retries ------------------------------------------------------
check "always failed" [ "$(ti state "$DOOMED" doomed always)" = failed ]
check "always made 2 attempts" [ "$(ti attempts "$DOOMED" doomed always)" = 2 ]
check "always's exit code is recorded" [ "$(ti exit_code "$DOOMED" doomed always)" = 3 ]
check "always's error says why" [ "$(ti error "$DOOMED" doomed always)" = "exit code 3" ]
check "2 attempt records, both failed" \
    [ "$(attempts "$DOOMED" doomed always | jq -r '[.attempts[].state] | join(",")')" = "failed,failed" ]
check "its downstream is upstream_failed" [ "$(ti state "$DOOMED" doomed child)" = upstream_failed ]
check "and the next level too" [ "$(ti state "$DOOMED" doomed grandchild)" = upstream_failed ]
check "upstream_failed tasks never ran" \
    [ "$(ti attempts "$DOOMED" doomed child)$(ti attempts "$DOOMED" doomed grandchild)" = 00 ]
check "an unrelated task still succeeded" [ "$(ti state "$DOOMED" doomed bystander)" = success ]
check "runs list shows the run failed" \
    [ "$("$CAIRN" runs list --dag doomed --json | jq -r '.runs[0].state')" = failed ]
finish
