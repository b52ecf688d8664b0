#!/usr/bin/env bash
# Container images end to end: images built by the test with umoci (a base
# layer, a second layer with a whiteout, an opaque folder, a symbolic and a
# hard link; env, workdir, user and entrypoint in the config), pushed with
# skopeo to Debian's docker-registry on 127.0.0.1, pulled by a runc worker
# (--insecure-registry), and tasks that check what they see. Also an oci:
# layout, a corrupted blob (refused, nothing unpacked), a registry with
# htpasswd auth given wrong credentials (a clear error naming it), a TLS
# registry with a test CA, runs pinned to digests (a tag moved mid-run, the
# cache key), and the cache collected on a worker with a small one.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/images_lib.sh"

for c in umoci skopeo docker-registry busybox htpasswd runc openssl; do
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

# a TLS registry with a test CA
make_tls "$T/tls"
start_registry tls "" "$T/tls"
push "$T/oci:1" "$REG_tls/test/img:1"

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
  tls:
    image: $REG_tls/test/img:1
    command: [cat, /added.txt]
  noep:
    image: $REG_plain/test/img:1
    entrypoint: []
    command: [sh, -c, 'echo "ep=\${EP:-none}"']
  ownep:
    image: $REG_plain/test/img:1
    entrypoint: [/bin/env, EP=task]
    command: [sh, -c, 'echo "ep=\$EP"']
EOF

# the pinned tag: img:pin, moved to another image while a run uses it
push "$T/oci:1" "$REG_plain/test/img:pin"
put_dag pin <<EOF
dag: pin
defaults: {timeout: 60s, image: $REG_plain/test/img:pin}
tasks:
  a:
    cache: true
    outputs: [o.txt]
    command: [sh, -c, 'cat /extra.txt 2>/dev/null || echo no-extra; echo a > /outputs/o.txt; sleep 4']
  b:
    needs: [a]
    command: [sh, -c, 'cat /extra.txt 2>/dev/null || echo no-extra']
EOF

start_scheduler s --insecure-registry "$REG_plain" --registry-ca "$T/tls/ca.pem"
start_worker w1 --insecure-registry "$REG_plain" --insecure-registry "$REG_auth" \
    --registry-auth "$T/auth.json" --registry-ca "$T/tls/ca.pem" --slots 2 --metrics 127.0.0.1:0

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
OUT2=$("$CAIRN" logs "$RUN" reg2 --dag images)
LOUT=$("$CAIRN" logs "$RUN" layout --dag images)
ALL="$OUT
$OUT2
$LOUT"
check "the pull shows in a task's log (layers and bytes)" \
    grep -q "cairn: image: layer 2/2 sha256:[0-9a-f]* .*B" <<<"$ALL"
check "three tasks at once on one image (by tag and by layout) pulled it once" \
    [ "$(grep -c "cairn: image: sha256:[0-9a-f]* unpacked" <<<"$ALL")" = 1 ]
check "reg2 ran on the same image" grep -qx added-present <<<"$OUT2"
check "the image was unpacked once (registry and layout: the same digest)" [ "$(find "$T/w1/images" -mindepth 1 -maxdepth 1 -regextype egrep -regex ".*/[0-9a-f]{64}" | wc -l)" -eq 1 ]
check "nothing is left half unpacked" [ -z "$(ls -A "$T/w1/images/tmp" 2>/dev/null)" ]

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

check "an image from a TLS registry with a custom CA (--registry-ca)" \
    [ "$(ti state "$RUN" images tls)" = success -a \
      "$("$CAIRN" logs "$RUN" tls --dag images | grep -v '^cairn: ')" = added ]

check "entrypoint: [] clears the image's Entrypoint" \
    [ "$("$CAIRN" logs "$RUN" noep --dag images | grep -v '^cairn: ')" = ep=none ]
check "entrypoint: replaces the image's Entrypoint" \
    [ "$("$CAIRN" logs "$RUN" ownep --dag images | grep -v '^cairn: ')" = ep=task ]

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

# --- pinning
digest_of() { # REPO:TAG -> the registry's manifest digest for it
    curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REG_plain/v2/${1%%:*}/manifests/${1#*:}" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
D1=$(digest_of test/img:1)
check "a task's image_digest is the digest its tag named" [ "$(ti image_digest "$RUN" images reg)" = "$D1" ]
check "the scheduler pinned the TLS registry's tag too" [ "$(ti image_digest "$RUN" images tls)" = "$D1" ]
check "the run records its pinned images" \
    [ "$(rj "$RUN" images ".images[\"$REG_plain/test/img:1\"]")" = "$D1" ]
check "the attempt's provenance has the digest" \
    grep -q "\"image_digest\": *\"$D1\"" <<<"$(attempts "$RUN" images reg)"

"$CAIRN" trigger pin >"$T/pin1.out" 2>&1
P1=$(head -n1 "$T/pin1.out")
pin_a_running() { [ "$(ti state "$P1" pin a)" = running ]; }
wait_until 30 pin_a_running
build_image "$T/oci" moved "moved tag"
push "$T/oci:moved" "$REG_plain/test/img:pin"
D2=$(digest_of test/img:pin)
check "the tag moved to another image" [ -n "$D2" -a "$D2" != "$D1" ]
check "the first pin run ended" [ "$(wait_run "$P1" pin 60)" = success ]
check "a task that started before the move ran the run's digest" [ "$(ti image_digest "$P1" pin a)" = "$D1" ]
check "a task leased after the move still runs the run's digest" [ "$(ti image_digest "$P1" pin b)" = "$D1" ]
check "... and sees the old image" [ "$("$CAIRN" logs "$P1" b --dag pin | grep -v '^cairn: ')" = no-extra ]
K1=$(ti cache_key "$P1" pin a)

"$CAIRN" trigger pin --wait >"$T/pin2.out" 2>&1 || true
P2=$(head -n1 "$T/pin2.out")
check "a new run pins the moved tag's digest" [ "$(ti image_digest "$P2" pin a)" = "$D2" ]
check "... and its tasks see the new image" [ "$("$CAIRN" logs "$P2" b --dag pin | grep -v '^cairn: ')" = "moved tag" ]
check "a new digest is a cache miss" [ "$(ti cached "$P2" pin a)" = false ]
check "... with another cache key" [ -n "$K1" -a "$(ti cache_key "$P2" pin a)" != "$K1" ]
"$CAIRN" trigger pin --wait >"$T/pin3.out" 2>&1 || true
P3=$(head -n1 "$T/pin3.out")
check "the same digest again is a cache hit" [ "$(ti cached "$P3" pin a)" = true ]

# --- GC: a worker whose cache holds one image, not two
cat >"$T/dags/gc.yaml" <<XEOF
dag: gc
defaults: {timeout: 60s, labels: {gc: "yes"}}
tasks:
  g1: {image: "$REG_plain/test/img:1", command: [true]}
  g2: {image: "$REG_plain/test/img:pin", needs: [g1], command: [cat, /extra.txt]}
XEOF
dag_loaded() { "$CAIRN" dags list --json 2>/dev/null | grep -q "\"$1\""; }
wait_until 20 dag_loaded gc
start_worker w2 --insecure-registry "$REG_plain" --labels gc=yes --image-cache-size 3M
"$CAIRN" trigger gc --wait >"$T/gc.out" 2>&1 || true
G=$(head -n1 "$T/gc.out")
check "the gc run succeeded" [ "$(run_state "$G" gc)" = success ]
check "the worker removed the least recently used image" logged w2 "CAIRN-IMAGE-GC .*removed image sha256:${D1#sha256:}"
check "... and kept the one just used" \
    [ "$(find "$T/w2/images" -mindepth 1 -maxdepth 1 -regextype egrep -regex ".*/[0-9a-f]{64}" -printf '%f\n')" = "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="moved") | .digest' "$T/oci/index.json" | cut -d: -f2)" ]
MOVED="sha256:$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="moved") | .digest' "$T/oci/index.json" | cut -d: -f2)"
w2_images() { "$CAIRN" workers --json | jq -r '.workers[] | select(.name=="w2") | .images | map(.digest) | join(" ")'; }
w2_lists_moved() { [ "$(w2_images)" = "$MOVED" ]; }
# (as of the worker's last POLL: at most a heartbeat behind)
wait_until 30 w2_lists_moved || true
check "cairn workers --json shows the worker's cached images" [ "$(w2_images)" = "$MOVED" ]
check "the worker's cached images have their size" \
    [ "$("$CAIRN" workers --json | jq -r '.workers[] | select(.name=="w1") | .images[0].size')" -gt 1000000 ]
check "... and the blobs only the removed image had" [ ! -e "$T/w2/images/blobs/sha256/${D1#sha256:}" ]

finish
