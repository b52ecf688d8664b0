#!/usr/bin/env bash
# The unit files pass `systemd-analyze verify` (with ExecStart pointing at the
# binaries just built, since verify checks that they exist).
source "$(dirname "$0")/lib.sh"
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not installed"; exit 1
fi
mkdir -p "$T/units"
for u in cairn-scheduler cairn-worker; do
    sed -e "s|/usr/local/sbin/cairn-scheduler|$SCHED|; s|/usr/local/sbin/cairn-worker|$WORKER|" \
        "$CAIRN_SRC/systemd/$u.service" > "$T/units/$u.service"
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$T/units/$u.service" 2>&1) && rc=0 || rc=$?
    # verify complains about the host's own units in some containers; only
    # lines about ours count
    ours=$(grep -F "$u.service" <<<"$out" || true)
    check "$u.service verifies (rc=$rc)" [ -z "$ours" ]
    [ -n "$ours" ] && echo "$ours"
    check "$u.service restarts on failure" grep -qx "Restart=on-failure" "$T/units/$u.service"
    check "$u.service has a state directory" grep -q "^StateDirectory=cairn" "$T/units/$u.service"
done
check "scheduler is sandboxed" grep -qx "ProtectSystem=strict" "$T/units/cairn-scheduler.service"
check "scheduler has no capabilities" grep -qx "CapabilityBoundingSet=" "$T/units/cairn-scheduler.service"
check "worker delegates cgroups for runc" grep -qx "Delegate=yes" "$T/units/cairn-worker.service"
finish
