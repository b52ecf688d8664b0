#!/usr/bin/env bash
# Every trigger rule, with upstreams that succeed, fail or are skipped,
# through the real scheduler and a worker (isolation none): which tasks
# run, which are skipped or upstream_failed, propagation over several
# levels, rules that fire before every upstream is done, and the run's
# outcome.
source "$(dirname "$0")/lib.sh"

put_dag rules <<'EOF'
dag: rules
tasks:
  ok1: {command: ["true"]}
  ok2: {command: ["true"]}
  bad1: {command: ["false"]}
  bad2: {command: ["false"]}
  slow: {command: [sleep, "3"]}

  as_ok: {needs: [ok1, ok2], command: ["true"]}
  as_mixed: {needs: [ok1, bad1], command: ["true"]}
  as_level2: {needs: [as_mixed], command: ["true"]}
  as_level3: {needs: [as_level2, ok2], command: ["true"]}
  as_skip: {needs: [af_mixed], command: ["true"]}

  ad_mixed: {needs: [ok1, bad1], trigger_rule: all_done, command: ["true"]}
  ad_upfailed: {needs: [as_level2, bad2], trigger_rule: all_done, command: ["true"]}

  af_failed: {needs: [bad1, bad2], trigger_rule: all_failed, command: ["true"]}
  af_mixed: {needs: [ok1, bad1], trigger_rule: all_failed, command: ["true"]}

  os_mixed: {needs: [ok1, bad1], trigger_rule: one_success, command: ["true"]}
  os_failed: {needs: [bad1, bad2], trigger_rule: one_success, command: ["true"]}
  os_early: {needs: [ok1, slow], trigger_rule: one_success, command: ["true"]}

  of_mixed: {needs: [ok1, bad1], trigger_rule: one_failed, command: ["true"]}
  of_ok: {needs: [ok1, ok2], trigger_rule: one_failed, command: ["true"]}
  of_early: {needs: [bad1, slow], trigger_rule: one_failed, command: ["true"]}

  nf_ok: {needs: [ok1, ok2], trigger_rule: none_failed, command: ["true"]}
  nf_mixed: {needs: [ok1, bad1], trigger_rule: none_failed, command: ["true"]}
  nf_skipped: {needs: [ok1, af_mixed], trigger_rule: none_failed, command: ["true"]}
  nf_upfailed: {needs: [as_mixed], trigger_rule: none_failed, command: ["true"]}
EOF

# nothing fails, one task is skipped: the run succeeds
put_dag quiet <<'EOF'
dag: quiet
tasks:
  a: {command: ["true"]}
  on_failure: {needs: [a], trigger_rule: one_failed, command: ["false"]}
  b: {needs: [a], command: ["true"]}
EOF

start_scheduler s
start_worker w1 --slots 4 --isolation none

RUN=$("$CAIRN" trigger rules)
QUIET=$("$CAIRN" trigger quiet)
check "run rules failed (it has failed tasks)" [ "$(wait_run "$RUN" rules 30)" = failed ]
check "run quiet succeeded (a skipped task is fine)" [ "$(wait_run "$QUIET" quiet 30)" = success ]
check "quiet: the one_failed task was skipped" [ "$(ti state "$QUIET" quiet on_failure)" = skipped ]

"$CAIRN" runs show "$RUN" --dag rules --json >"$T/run.json"
expect() { # expect TASK STATE WHY
    local got
    got=$(jq -r --arg t "$1" '.tasks[] | select(.task == $t) | .state' "$T/run.json")
    check "$1 is $2 ($3)" [ "$got" = "$2" ]
}
expect ok1 success "plain task"
expect bad1 failed "plain task"
expect as_ok success "all_success, all upstreams succeeded"
expect as_mixed upstream_failed "all_success, one upstream failed"
expect as_level2 upstream_failed "all_success, upstream is upstream_failed"
expect as_level3 upstream_failed "two levels below the failure"
expect as_skip skipped "all_success, upstream skipped"
expect ad_mixed success "all_done runs after a failure"
expect ad_upfailed success "all_done runs after upstream_failed and failed"
expect af_failed success "all_failed, every upstream failed"
expect af_mixed skipped "all_failed, one upstream succeeded"
expect os_mixed success "one_success, one of them succeeded"
expect os_failed upstream_failed "one_success, none succeeded"
expect os_early success "one_success"
expect of_mixed success "one_failed, one of them failed"
expect of_ok skipped "one_failed, none failed"
expect of_early success "one_failed"
expect nf_ok success "none_failed, all succeeded"
expect nf_mixed upstream_failed "none_failed, one failed"
expect nf_skipped success "none_failed, one skipped"
expect nf_upfailed upstream_failed "none_failed, upstream is upstream_failed"
check "skipped and upstream_failed tasks never ran" \
    [ "$(jq '[.tasks[] | select(.state == "skipped" or .state == "upstream_failed") | .attempts] | add' "$T/run.json")" = 0 ]
check "skipped tasks say why" \
    [ "$(jq -r '.tasks[] | select(.task == "af_mixed") | .error' "$T/run.json")" != null ]

# one_success and one_failed fire without waiting for the slow upstream
at() { jq -r --arg t "$1" --arg f "$2" '.tasks[] | select(.task == $t) | .[$f]' "$T/run.json"; }
check "one_success started before the slow upstream ended" \
    [ "$(at os_early started_at)" \< "$(at slow ended_at)" ]
check "one_failed started before the slow upstream ended" \
    [ "$(at of_early started_at)" \< "$(at slow ended_at)" ]
check "all_done waited for every upstream" \
    [ "$(at ad_mixed started_at)" \> "$(at bad1 ended_at)" ]
finish
