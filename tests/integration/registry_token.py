#!/usr/bin/python3
"""A token server for Debian's docker-registry (`auth: token:`), for tests.

    registry_token.py KEY CERT ISSUER USERS PORTFILE LOG

Answers GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with
{"token": JWT} signed RS256 by KEY (openssl does the signing), the
certificate CERT in the JWT's x5c header (the registry's rootcertbundle
holds it). USERS is a file of "user:password" lines. Without credentials
the token grants pull of repositories outside private/; with good
credentials it grants what was asked; wrong credentials get 401. Each
request is a line in LOG: "token USER|anonymous service=S scope=..."
(or "refused USER"). The port bound is written to PORTFILE. SIGTERM stops it.
"""
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY, CERT, ISSUER, USERS, PORTFILE, LOG = sys.argv[1:7]


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der():
    pem = open(CERT).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


X5C = base64.b64encode(cert_der()).decode()


def users():
    out = {}
    for line in open(USERS):
        line = line.strip()
        if ":" in line:
            u, p = line.split(":", 1)
            out[u] = p
    return out


def sign(payload):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(payload).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY],
                         input=signing_input.encode(), capture_output=True, check=True).stdout
    return signing_input + "." + b64url(sig)


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_json(404, {"error": "not found"})
            return
        q = urllib.parse.parse_qs(url.query)
        service = q.get("service", [""])[0]
        scopes = q.get("scope", [])
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, p = base64.b64decode(auth[6:]).decode().split(":", 1)
            except Exception:
                u, p = "", None
            if users().get(u) != p:
                log("refused %s service=%s scope=%s" % (u, service, " ".join(scopes)))
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                               {"WWW-Authenticate": 'Basic realm="cairn-test-token"'})
                return
            user = u
        access = []
        for sc in scopes:
            parts = sc.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
            if user is None:
                if name.startswith("private/"):
                    continue
                actions = [a for a in actions if a == "pull"]
            access.append({"type": "repository", "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": service, "iat": now,
                  "nbf": now - 60, "exp": now + 600, "jti": b64url(os.urandom(12)),
                  "access": access}
        log("token %s service=%s scope=%s" % (user or "anonymous", service, " ".join(scopes)))
        tok = sign(claims)
        self.send_json(200, {"token": tok, "access_token": tok, "expires_in": 600})


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
