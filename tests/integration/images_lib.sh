# Helpers for the image tests (sourced after lib.sh): test images built
# with umoci from busybox, and Debian's docker-registry on loopback.

# mk_layer1 DIR: the base layer's tree
mk_base_tree() {
    local r=$1
    mkdir -p "$r/bin" "$r/etc" "$r/app" "$r/opaque" "$r/data"
    cp /bin/busybox "$r/bin/busybox"
    for c in sh cat ls id env pwd test echo readlink stat true; do ln -s busybox "$r/bin/$c"; done
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\nstaff:x:50:\n' >"$r/etc/group"
    echo gone >"$r/gone.txt"
    echo keep >"$r/keep.txt"
    echo old >"$r/opaque/old.txt"
    echo base >"$r/data/base.txt"
    chmod 0640 "$r/keep.txt"
}

# mk_top_tree DIR: the second layer: adds added.txt (and a hard link to
# it), deletes gone.txt (whiteout), makes opaque/ opaque with new.txt, adds
# a symbolic link
mk_top_tree() {
    local r=$1
    mkdir -p "$r/opaque"
    echo added >"$r/added.txt"
    ln "$r/added.txt" "$r/hard.txt"
    : >"$r/.wh.gone.txt"
    : >"$r/opaque/.wh..wh..opq"
    echo new >"$r/opaque/new.txt"
    ln -s /data/base.txt "$r/link"
}

# tar_tree DIR OUT: a layer archive of DIR (numeric owners, root:root)
tar_tree() {
    tar -C "$1" --numeric-owner --owner=0 --group=0 -cf "$2" .
}

# build_image LAYOUT TAG [EXTRA_FILE_CONTENT]: an image with the two layers
# and its config (env, workdir, user, entrypoint)
build_image() {
    local layout=$1 tag=$2 extra=${3:-}
    local w=$T/build.$tag
    rm -rf "$w"; mkdir -p "$w/base" "$w/top"
    mk_base_tree "$w/base"
    mk_top_tree "$w/top"
    [ -z "$extra" ] || echo "$extra" >"$w/top/extra.txt"
    tar_tree "$w/base" "$w/base.tar"
    tar_tree "$w/top" "$w/top.tar"
    [ -d "$layout" ] || umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    umoci raw add-layer --image "$layout:$tag" "$w/base.tar"
    umoci raw add-layer --image "$layout:$tag" "$w/top.tar"
    umoci config --image "$layout:$tag" --config.env IMG_VAR=from-image \
        --config.env SHARED=image --config.env PATH=/bin \
        --config.workingdir /app --config.user app \
        --config.entrypoint /bin/env --config.entrypoint EP=from-entrypoint
}

# make_tls DIR: a test CA (DIR/ca.pem) and a certificate for 127.0.0.1
# signed by it (DIR/server.pem, DIR/server.key)
make_tls() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cairn-test-ca \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
}

# start_registry NAME [htpasswd FILE] [TLS_DIR]: sets REG_<NAME>=127.0.0.1:PORT
start_registry() {
    local name=$1 htp=${2:-} tls=${3:-}
    local port
    port=$(free_port)
    mkdir -p "$T/reg-$name"
    {
        echo "version: 0.1"
        echo "log: {level: warn}"
        echo "storage: {filesystem: {rootdirectory: $T/reg-$name}, delete: {enabled: true}}"
        if [ -n "$tls" ]; then
            echo "http: {addr: 127.0.0.1:$port, tls: {certificate: $tls/server.pem, key: $tls/server.key}}"
        else
            echo "http: {addr: 127.0.0.1:$port}"
        fi
        if [ -n "$htp" ]; then echo "auth: {htpasswd: {realm: cairn-test, path: $htp}}"; fi
    } >"$T/reg-$name.yml"
    docker-registry serve "$T/reg-$name.yml" >>"$T/reg-$name.log" 2>&1 &
    PIDS+=("$!")
    eval "REG_$name=127.0.0.1:$port"
    local i
    for i in $(seq 1 100); do
        if [ -n "$tls" ]; then
            curl -s --cacert "$tls/ca.pem" -o /dev/null "https://127.0.0.1:$port/v2/" && return 0
        else
            curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
        fi
        sleep 0.1
    done
    echo "registry $name did not come up" >&2
    return 1
}

# push LAYOUT:TAG HOST/REPO:TAG [skopeo args]
push() {
    skopeo copy --quiet --dest-tls-verify=false "${@:3}" "oci:$1" "docker://$2"
}

# start_token_registry NAME USERS_FILE: a token server (registry_token.py,
# its signing certificate made here with openssl) and a docker-registry
# with `auth: token:` that trusts it; sets REG_<NAME>=127.0.0.1:PORT and
# TOKLOG_<NAME> (the token server's request log)
start_token_registry() {
    local name=$1 users=$2 d=$T/tok-$1 tport port i
    mkdir -p "$d" "$T/reg-$name"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cairn-test-token \
        -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
    : >"$d/requests.log"
    /usr/bin/python3 "$CAIRN_SRC/tests/integration/registry_token.py" "$d/key.pem" \
        "$d/cert.pem" cairn-test-issuer "$users" "$d/port" "$d/requests.log" \
        >>"$T/tok-$name.log" 2>&1 &
    PIDS+=("$!")
    wait_until 20 [ -s "$d/port" ] || { echo "token server $name did not come up" >&2; return 1; }
    tport=$(cat "$d/port")
    port=$(free_port)
    cat >"$T/reg-$name.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $T/reg-$name}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: cairn-test-registry
    issuer: cairn-test-issuer
    rootcertbundle: $d/cert.pem
YML
    docker-registry serve "$T/reg-$name.yml" >>"$T/reg-$name.log" 2>&1 &
    PIDS+=("$!")
    eval "REG_$name=127.0.0.1:$port"
    eval "TOKLOG_$name=$d/requests.log"
    for i in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
        sleep 0.1
    done
    echo "registry $name did not come up" >&2
    return 1
}
