#!/usr/bin/env bash
# Container images end to end: images built by the test with umoci (a base
# layer, a second layer with a whiteout, an opaque folder, a symbolic and a
# hard link; env, workdir, user and entrypoint in the config), pushed with
# skopeo to Debian's docker-registry on 127.0.0.1, pulled by a runc worker
# (--insecure-registry), and tasks that check what they see. Also an oci:
# layout, a corrupted blob (refused, nothing unpacked), and a registry with
# htpasswd auth given wrong credentials (a clear error naming it).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/images_lib.sh"

for c in umoci skopeo docker-registry busybox htpasswd runc; do
    if ! command -v "$c" >/dev/null && [ ! -x "/bin/$c" ]; then
        echo "not ok - $c is not installed (run scripts/install-deps.sh)"
        exit 1
    fi
done

build_image "$T/oci" 1
start_registry plain
push "$T/oci:1" "$REG_plain/test/img:1"

# an image whose layer is corrupted in the registry's storage
build_image "$T/oci" bad "this layer is different"
push "$T/oci:bad" "$REG_plain/test/bad:1"
BADLAYER=$(jq -r '.layers[-1].digest' < "$T/oci/blobs/sha256/$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="bad") | .digest' "$T/oci/index.json" | cut -d: -f2)")
BADFILE=$(find "$T/reg-plain" -path "*blobs/sha256/*/${BADLAYER#sha256:}/data")
check "the bad image's top layer is in the registry" [ -f "$BADFILE" ]
printf 'X' | dd of="$BADFILE" bs=1 seek=100 conv=notrunc status=none

# a registry with htpasswd auth, and wrong credentials for it
htpasswd -Bbc "$T/htpasswd" alice right-password >/dev/null 2>&1
start_registry auth "$T/htpasswd"
push "$T/oci:1" "$REG_auth/test/img:1" --dest-creds alice:right-password
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_auth" "$(printf 'alice:wrong' | base64)" >"$T/auth.json"

SEE='echo "uid=$(id -u) gid=$(id -g) cwd=$(pwd)";
  echo "img=$IMG_VAR shared=$SHARED ep=$EP";
  test -e /added.txt && echo added-present;
  test -e /gone.txt || echo gone-absent;
  test -e /opaque/old.txt || echo opaque-old-absent;
  cat /opaque/new.txt /data/base.txt;
  echo "link=$(readlink /link) $(cat /link)";
  echo "hard=$(stat -c %h /hard.txt) $(cat /hard.txt)";
  echo "keepmode=$(stat -c %a /keep.txt)";
  test -e /.wh.gone.txt || echo no-whiteout-files;
  if touch /rootfs-write 2>/dev/null; then echo rootfs-writable; else echo rootfs-readonly; fi;
  echo hi > /outputs/o.txt && echo outputs-ok'

put_dag images <<EOF
dag: images
defaults: {timeout: 60s}
tasks:
  reg:
    image: $REG_plain/test/img:1
    env: {SHARED: task}
    command: [sh, -c, '$SEE']
    outputs: [o.txt]
  reg2:
    image: $REG_plain/test/img:1
    command: [sh, -c, 'echo second; test -e /added.txt && echo added-present']
  layout:
    image: oci:$T/oci:1
    command: [sh, -c, 'test -e /gone.txt || echo gone-absent; cat /added.txt']
  corrupt:
    image: $REG_plain/test/bad:1
    command: [true]
  wrongcreds:
    image: $REG_auth/test/img:1
    command: [true]
EOF

start_scheduler s
start_worker w1 --insecure-registry "$REG_plain" --insecure-registry "$REG_auth" \
    --registry-auth "$T/auth.json" --slots 2 --metrics 127.0.0.1:0

set +e
"$CAIRN" trigger images --wait >"$T/run.out" 2>&1
set -e
RUN=$(head -n1 "$T/run.out")
check "the run ended" [ "$(wait_run "$RUN" images 90)" != timeout ]

OUT=$("$CAIRN" logs "$RUN" reg --dag images)
echo "$OUT" | sed 's/^/# reg: /'
check "reg succeeded" [ "$(ti state "$RUN" images reg)" = success ]
check "the image's User runs the task (app: 1000:1000)" grep -qx "uid=1000 gid=1000 cwd=/app" <<<"$OUT"
check "Env from the image, the task's env wins, the Entrypoint is prepended" \
    grep -qx "img=from-image shared=task ep=from-entrypoint" <<<"$OUT"
check "a file the second layer adds is there" grep -qx added-present <<<"$OUT"
check "a file the second layer whites out is gone" grep -qx gone-absent <<<"$OUT"
check "an opaque folder hides the lower layer's entries" grep -qx opaque-old-absent <<<"$OUT"
check "... and keeps its own" grep -qx new <<<"$OUT"
check "the base layer's other files are there" grep -qx base <<<"$OUT"
check "a symbolic link" grep -qx "link=/data/base.txt base" <<<"$OUT"
check "a hard link (2 links)" grep -qx "hard=2 added" <<<"$OUT"
check "permissions are kept" grep -qx "keepmode=640" <<<"$OUT"
check "whiteout files are not in the rootfs" grep -qx no-whiteout-files <<<"$OUT"
check "the rootfs is read-only" grep -qx rootfs-readonly <<<"$OUT"
check "the image's user can write its outputs" grep -qx outputs-ok <<<"$OUT"
check "the pull shows in the task's log (layers and bytes)" \
    grep -q "cairn: image: layer 2/2 sha256:[0-9a-f]* .*B" <<<"$OUT"
check "reg2 ran on the same image" grep -qx added-present <<<"$("$CAIRN" logs "$RUN" reg2 --dag images)"
check "the image was unpacked once (registry and layout: the same digest)" [ "$(find "$T/w1/images" -mindepth 1 -maxdepth 1 -regextype egrep -regex ".*/[0-9a-f]{64}" | wc -l)" -eq 1 ]
check "nothing is left half unpacked" [ -z "$(ls -A "$T/w1/images/tmp" 2>/dev/null)" ]

LOUT=$("$CAIRN" logs "$RUN" layout --dag images)
check "an oci: layout image runs" [ "$(ti state "$RUN" images layout)" = success ]
check "... with its layers applied" [ "$(printf '%s\n' "$LOUT" | grep -v '^cairn: ' | tr '\n' ' ')" = "gone-absent added " ]

CERR=$(ti error "$RUN" images corrupt)
echo "# corrupt: $CERR"
check "a corrupted blob fails the task" [ "$(ti state "$RUN" images corrupt)" = failed ]
check "... refused with a clear error naming the digest" \
    grep -q "blob $BADLAYER has digest sha256:[0-9a-f]*: refused" <<<"$CERR"
check "... and the bad blob is not stored" [ ! -e "$T/w1/images/blobs/sha256/${BADLAYER#sha256:}" ]

WERR=$(ti error "$RUN" images wrongcreds)
echo "# wrongcreds: $WERR"
check "wrong credentials fail the task" [ "$(ti state "$RUN" images wrongcreds)" = failed ]
check "... with an error naming the registry" \
    grep -q "registry $REG_auth refused the credentials for test/img" <<<"$WERR"

# the worker's /metrics counts the image work
WPORT=$(sed -n 's/.*worker metrics at http:\/\/127\.0\.0\.1:\([0-9]*\)\/metrics.*/\1/p' "$T/w1.log" |
    tail -n 1)
curl -sf "http://127.0.0.1:$WPORT/metrics" >"$T/wmetrics.txt" || true
grep '^cairn_worker_image' "$T/wmetrics.txt" | sed 's/^/# /'
check "promtool accepts the worker's /metrics" promtool check metrics <"$T/wmetrics.txt"
check "/metrics: the image was pulled" \
    grep -qE '^cairn_worker_image_prepares_total\{result="pulled"\} [1-9]' "$T/wmetrics.txt"
check "/metrics: the corrupted and the refused pulls failed" \
    grep -qx 'cairn_worker_image_prepares_total{result="failed"} 2' "$T/wmetrics.txt"
check "/metrics: the pulls' bytes" \
    grep -qE '^cairn_worker_image_pulled_bytes_total [1-9]' "$T/wmetrics.txt"

finish
