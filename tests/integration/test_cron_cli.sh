#!/usr/bin/env bash
# Drives `cairn cron next|prev` and checks output, messages and exit codes.
# Needs CAIRN_BIN (the build directory); the binary is $CAIRN_BIN/cli/cairn.
set -euo pipefail

: "${CAIRN_BIN:?set CAIRN_BIN to the build directory}"
CAIRN="$CAIRN_BIN/cli/cairn"
if [[ ! -x "$CAIRN" ]]; then
    echo "FAIL: $CAIRN is missing or not executable" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run CMD...: sets rc, and leaves stdout/stderr in $tmp/out and $tmp/err.
run() {
    set +e
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    set -e
}

# expect_out NAME EXPECTED -- CMD...: exit 0 and exactly EXPECTED on stdout.
expect_out() {
    local name=$1 want=$2
    shift 3
    checks=$((checks + 1))
    run "$@"
    if [[ $rc -ne 0 ]]; then
        fail "$name: exit $rc, want 0 (stderr: $(cat "$tmp/err"))"
        return
    fi
    if [[ "$(cat "$tmp/out")" != "$want" ]]; then
        fail "$name: output differs"
        diff <(printf '%s\n' "$want") "$tmp/out" >&2 || true
    fi
}

# expect_fail NAME CODE PATTERN -- CMD...: exit CODE and PATTERN (grep -E) on stderr.
expect_fail() {
    local name=$1 code=$2 pattern=$3
    shift 4
    checks=$((checks + 1))
    run "$@"
    if [[ $rc -ne $code ]]; then
        fail "$name: exit $rc, want $code (stderr: $(cat "$tmp/err"))"
        return
    fi
    if ! grep -Eq -- "$pattern" "$tmp/err"; then
        fail "$name: stderr lacks /$pattern/: $(cat "$tmp/err")"
    fi
}

NY=America/New_York

# --- Ticks across DST --------------------------------------------------------

expect_out "hourly, New York spring forward" \
"2026-03-08T00:00:00-05:00
2026-03-08T01:00:00-05:00
2026-03-08T03:00:00-04:00
2026-03-08T04:00:00-04:00
2026-03-08T05:00:00-04:00" \
    -- "$CAIRN" cron next '0 * * * *' --tz "$NY" --after 2026-03-07T23:30

expect_out "hourly, New York fall back" \
"2026-11-01T01:00:00-04:00
2026-11-01T02:00:00-05:00
2026-11-01T03:00:00-05:00" \
    -- "$CAIRN" cron next '0 * * * *' --tz="$NY" --after=2026-11-01T00:30 -n 3

expect_out "daily 02:30 across both New York transitions" \
"2026-03-07T02:30:00-05:00
2026-03-08T03:00:00-04:00
2026-03-09T02:30:00-04:00" \
    -- "$CAIRN" cron next '30 2 * * *' --tz "$NY" --after 2026-03-06T12:00 -n 3

expect_out "02:00 and 03:00 on the spring-forward day fire once" \
"2026-03-08T03:00:00-04:00
2026-03-09T02:00:00-04:00" \
    -- "$CAIRN" cron next '0 2,3 * * *' --tz "$NY" --after 2026-03-08T00:00 -n 2

expect_out "repeated hour fires once (Berlin)" \
"2026-10-25T02:30:00+02:00
2026-10-26T02:30:00+01:00" \
    -- "$CAIRN" cron next '30 2 * * *' --tz Europe/Berlin --after 2026-10-24T12:00 -n 2

expect_out "half-hour offsets (Adelaide, forward)" \
"2026-10-04T01:00:00+09:30
2026-10-04T03:00:00+10:30" \
    -- "$CAIRN" cron next '0 * * * *' --tz Australia/Adelaide --after 2026-10-04T00:30 -n 2

expect_out "an absolute --after is not moved by --tz" \
"2026-03-08T03:00:00-04:00" \
    -- "$CAIRN" cron next '0 * * * *' --tz "$NY" --after 2026-03-08T06:30:00Z -n 1

expect_out "prev walks backwards" \
"2026-03-09T02:30:00-04:00
2026-03-08T03:00:00-04:00
2026-03-07T02:30:00-05:00" \
    -- "$CAIRN" cron prev '30 2 * * *' --tz "$NY" --before 2026-03-10 -n 3

# --- Syntax ------------------------------------------------------------------

expect_out "UTC by default, with Z" \
"2026-01-01T00:00:00Z
2026-01-05T00:00:00Z
2026-01-12T00:00:00Z" \
    -- "$CAIRN" cron next '0 0 1 * MON' --after 2025-12-31 -n 3

expect_out "macros and names" \
"2027-01-01T00:00:00Z
2028-01-01T00:00:00Z" \
    -- "$CAIRN" cron next @yearly --after 2026-06-01T00:00:00+02:00 -n 2

expect_out "7 is Sunday" \
"2026-01-04T12:00:00Z" \
    -- "$CAIRN" cron next '0 12 * * 7' --after 2026-01-01 -n 1

expect_out "leap day" \
"2028-02-29T00:00:00Z
2032-02-29T00:00:00Z" \
    -- "$CAIRN" cron next '0 0 29 2 *' --after 2026-01-01 -n 2

expect_out "options before the expression" \
"2026-01-01T00:15:00Z" \
    -- "$CAIRN" cron next -n 1 --after 2026-01-01 -- '*/15 * * * *'

# Default -n is 5, default --after is now: five ticks, all in the future.
checks=$((checks + 1))
now=$(date +%s)
run "$CAIRN" cron next '* * * * *'
if [[ $rc -ne 0 || $(wc -l <"$tmp/out") -ne 5 ]]; then
    fail "defaults: exit $rc, $(wc -l <"$tmp/out") lines, want 0 and 5"
else
    first=$(date -d "$(head -n1 "$tmp/out")" +%s)
    if ((first <= now - 1 || first > now + 61)); then
        fail "defaults: first tick $(head -n1 "$tmp/out") is not within a minute of now"
    fi
fi

# --- Errors ------------------------------------------------------------------

checks=$((checks + 1))
run "$CAIRN" cron next '0 0 * * 9'
want_err="cairn: bad cron expression '0 0 * * 9': day-of-week value 9 out of range 0-7
  0 0 * * 9
          ^"
if [[ $rc -ne 1 ]]; then
    fail "bad day-of-week: exit $rc, want 1"
elif [[ "$(cat "$tmp/err")" != "$want_err" ]]; then
    fail "bad day-of-week: stderr differs"
    diff <(printf '%s\n' "$want_err") "$tmp/err" >&2 || true
fi

checks=$((checks + 1))
run "$CAIRN" cron next '61 * * * *'
if [[ $rc -ne 1 || "$(sed -n 3p "$tmp/err")" != "  ^" ]]; then
    fail "bad minute: exit $rc, caret line '$(sed -n 3p "$tmp/err")'"
fi

checks=$((checks + 1))
run "$CAIRN" cron next '0 0 * FOO *'
if [[ $rc -ne 1 || "$(sed -n 3p "$tmp/err")" != "        ^" ]]; then
    fail "bad month name: exit $rc, caret line '$(sed -n 3p "$tmp/err")'"
fi

expect_fail "wrong field count" 1 "bad cron expression '0 0 \* \*': 4 fields, expected 5" \
    -- "$CAIRN" cron next '0 0 * *'
expect_fail "unknown macro" 1 "unknown macro '@reboot'" -- "$CAIRN" cron next @reboot
expect_fail "unknown zone" 1 "unknown time zone 'Mars/Olympus'" \
    -- "$CAIRN" cron next '0 * * * *' --tz Mars/Olympus
expect_fail "zone with .." 1 "unknown time zone" \
    -- "$CAIRN" cron next '0 * * * *' --tz ../../etc/passwd
expect_fail "never fires" 1 "does not fire within 5 years" \
    -- "$CAIRN" cron next '0 0 30 2 *' --after 2026-01-01

expect_fail "missing subcommand" 2 "missing subcommand" -- "$CAIRN" cron
expect_fail "unknown subcommand" 2 "unknown subcommand 'later'" -- "$CAIRN" cron later '* * * * *'
expect_fail "missing expression" 2 "missing cron expression" -- "$CAIRN" cron next
expect_fail "unquoted expression" 2 "unexpected argument" -- "$CAIRN" cron next 0 '*' '*' '*' '*'
expect_fail "unknown option" 2 "unknown option '--zone'" \
    -- "$CAIRN" cron next '* * * * *' --zone UTC
expect_fail "option without value" 2 "needs a value" -- "$CAIRN" cron next '* * * * *' --tz
expect_fail "bad count" 2 "-n wants a number" -- "$CAIRN" cron next '* * * * *' -n 0
expect_fail "bad count text" 2 "-n wants a number" -- "$CAIRN" cron next '* * * * *' -n 3x
expect_fail "impossible date" 2 "bad time '2026-02-30'" \
    -- "$CAIRN" cron next '* * * * *' --after 2026-02-30
expect_fail "hour 24" 2 "bad time" -- "$CAIRN" cron next '* * * * *' --after 2026-01-01T24:00
expect_fail "--after on prev" 2 "unknown option '--after'" \
    -- "$CAIRN" cron prev '* * * * *' --after 2026-01-01

checks=$((checks + 1))
run "$CAIRN" cron --help
if [[ $rc -ne 0 ]] || ! grep -q "cairn cron next EXPR" "$tmp/out"; then
    fail "help: exit $rc"
fi

if ((failures > 0)); then
    echo "test_cron_cli: $failures of $checks checks failed" >&2
    exit 1
fi
echo "test_cron_cli: all $checks checks passed"
