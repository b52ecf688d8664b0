#!/usr/bin/env bash
# Work folders are reused between tasks: each task still starts with an
# empty workspace and outputs folder, whatever the task before it left
# there (files, folders without permissions, a symbolic link in place of its
# outputs folder), and nothing outside the work folder is touched.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/outside"
echo keep >"$T/outside/precious"
put_dag messy <<YAML
dag: messy
defaults: {retries: 0}
tasks:
  litter:
    command: [sh, -c, "mkdir -p deep/er && echo x > deep/er/f && echo y > .hidden && mkdir locked && echo z > locked/f && chmod 000 locked && echo o > \$CAIRN_OUTPUTS/left.txt"]
  hijack:
    needs: [litter]
    command: [sh, -c, "pwd > \$CAIRN_OUTPUTS/../../seen; rm -rf \$CAIRN_OUTPUTS && ln -s $T/outside \$CAIRN_OUTPUTS"]
  check1:
    needs: [hijack]
    command: [sh, -c, "ls -A; ls -A \$CAIRN_OUTPUTS; [ -z \"\$(ls -A)\" ] && [ -d \$CAIRN_OUTPUTS ] && [ ! -L \$CAIRN_OUTPUTS ] && [ -z \"\$(ls -A \$CAIRN_OUTPUTS)\" ]"]
  check2:
    needs: [check1]
    command: [sh, -c, "[ -z \"\$(ls -A)\" ] && [ -z \"\$(ls -A \$CAIRN_OUTPUTS)\" ]"]
YAML

start_scheduler s
start_worker w1 --isolation none --slots 1
r=$("$CAIRN" trigger messy)
check "the run succeeds: every task found an empty workspace and outputs folder" \
    test "$(wait_run "$r" messy 60)" = success
check "a work folder was reused (the pool had one)" bash -c '[ -n "$(ls -A "$0"/w1/work/.pool)" ]' "$T"
check "nothing outside was touched" test "$(ls -A "$T/outside")" = precious
check "  not even the file's content" test "$(cat "$T/outside/precious")" = keep
for i in 1 2 3; do "$CAIRN" trigger messy >/dev/null; done
wait_until 60 bash -c '[ "$("$0" runs list --dag messy --state success --json | jq ".runs | length")" = 4 ]' "$CAIRN"
check "four runs in a row all succeed" test "$("$CAIRN" runs list --dag messy --state success --json | jq '.runs | length')" = 4
check "the pool stays small (one folder per slot in use)" test "$(ls -A "$T/w1/work/.pool" | wc -l)" -le 2
finish
