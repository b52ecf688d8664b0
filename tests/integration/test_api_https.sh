#!/usr/bin/env bash
# HTTPS for the API the documented way (docs/api.md, "Security"): the
# scheduler on loopback with --api-tokens, nginx in front terminating TLS
# with a certificate made here, its public name in --http-allowed-hosts.
# Through the proxy: health, 401 without a token, reads and a trigger with
# one, the UI page (also under a path prefix), the Origin check with the proxy's https origin; the
# plain port still refuses a Host it does not serve.
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || { echo "nginx is not installed (scripts/install-deps.sh)"; exit 1; }

put_dag hello <<'EOF2'
dag: hello
tasks:
  hi: {command: ["true"]}
EOF2

TOK=$T/tokens
viewer=$("$CAIRN" tokens create v --role viewer --file "$TOK" 2>/dev/null)
operator=$("$CAIRN" tokens create o --role operator --file "$TOK" 2>/dev/null)
start_scheduler sched --api-tokens "$TOK" --http-allowed-hosts cairn.test

N=$T/nginx
mkdir -p "$N/logs" "$N/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cairn.test \
    -addext "subjectAltName=DNS:cairn.test" -keyout "$N/key.pem" -out "$N/cert.pem" 2>/dev/null
PORT=$(free_port)
cat >"$N/nginx.conf" <<EOF2
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
    access_log $N/logs/access.log;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name cairn.test;
        ssl_certificate     $N/cert.pem;
        ssl_certificate_key $N/key.pem;
        client_max_body_size 8m;
        location / {
            proxy_pass http://127.0.0.1:$HTTP_PORT;
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }
        location /cairn/ {
            proxy_pass http://127.0.0.1:$HTTP_PORT/;
            proxy_set_header Host \$host;
        }
    }
}
EOF2
nginx -p "$N" -c "$N/nginx.conf" -e "$N/logs/error.log" -g 'daemon off; master_process off;' \
    >"$T/nginx.log" 2>&1 &
PIDS+=("$!")
U=https://cairn.test:$PORT
C=(curl -s --cacert "$N/cert.pem" --resolve "cairn.test:$PORT:127.0.0.1" -o "$T/out" -w '%{http_code}')
wait_until 10 "${C[@]}" "$U/api/v1/health" || true

check "health over HTTPS through nginx" [ "$("${C[@]}" "$U/api/v1/health")" = 200 ]
check "the certificate is checked (no --cacert: refused)" \
    sh -c "! curl -sf --resolve cairn.test:$PORT:127.0.0.1 '$U/api/v1/health' >/dev/null"
check "no token over HTTPS: 401" [ "$("${C[@]}" "$U/api/v1/runs")" = 401 ]
check "a viewer reads over HTTPS" \
    [ "$("${C[@]}" -H "Authorization: Bearer $viewer" "$U/api/v1/runs")" = 200 ]
st=$("${C[@]}" -X POST -H 'Content-Type: application/json' -H "Origin: $U" -d '{}' \
    -H "Authorization: Bearer $operator" "$U/api/v1/dags/hello/trigger")
check "an operator triggers over HTTPS from the proxy's own origin ($st)" [ "$st" = 201 ]
st=$("${C[@]}" -X POST -H 'Content-Type: application/json' -H "Origin: https://evil.example" \
    -d '{}' -H "Authorization: Bearer $operator" "$U/api/v1/dags/hello/trigger")
check "a foreign origin through the proxy: 403" [ "$st" = 403 ]
check "the UI page over HTTPS" sh -c "[ \$(${C[*]} '$U/') = 200 ] && grep -q '<script>' '$T/out'"
check "under a path prefix: the page and the API" \
    sh -c "[ \$(${C[*]} '$U/cairn/') = 200 ] && [ \$(${C[*]} -H 'Authorization: Bearer $viewer' '$U/cairn/api/v1/dags') = 200 ] && grep -q hello '$T/out'"
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.example' "$CAIRN_SERVER/api/v1/health")
check "on the plain port a Host not served is 400" [ "$st" = 400 ]
finish
