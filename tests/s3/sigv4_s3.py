#!/usr/bin/python3
"""A small S3-compatible server that verifies AWS Signature Version 4.

s3rver (tests/s3) accepts any well-formed V4 signature: it checks the key
id, not the signature. This server, written with the standard library
only (hashlib, hmac), recomputes every request's signature from the
canonical request (docs: "Signature Version 4 signing process",
"Authenticating Requests: Using the Authorization Header") and refuses a
mismatch with 403 SignatureDoesNotMatch, as S3 does. Before it listens it
checks its own signing code against AWS's documented example (GET
/test.txt of examplebucket, 20130524T000000Z), so a bug here cannot pass
a bad client.

It serves the subset of S3 the artifact store uses, path-style, from a
folder: HEAD, GET and PUT of objects (PUT with x-amz-copy-source copies),
DELETE, ListObjectsV2, and multipart uploads (initiate, parts, complete,
abort).

  sigv4_s3.py --dir DIR --bucket B --access-key K --secret-file F
              [--region R] [--port 0]

Prints "listening on 127.0.0.1:PORT", then one line per request:
"SIGV4-OK METHOD PATH" or "SIGV4-REFUSED METHOD PATH: why".
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import os
import re
import secrets
import shutil
import signal
import sys
import urllib.parse

UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service="s3"):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_query(raw):
    """Each name and value decoded, then encoded the AWS way (unreserved
    characters as they are, everything else %XX), sorted by name, then
    value; a name without '=' gets an empty value."""
    pairs = []
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        k = urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~")
        v = urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")
        pairs.append((k, v))
    pairs.sort()
    return "&".join("%s=%s" % kv for kv in pairs)


def canonical_request(method, path, query, headers, signed, payload_hash):
    """headers: {lower-case name: [values]}."""
    lines = []
    for name in signed:
        vals = [" ".join(v.strip().split()) for v in headers.get(name, [])]
        lines.append("%s:%s\n" % (name, ",".join(vals)))
    return "\n".join([method, path, canonical_query(query), "".join(lines), ";".join(signed),
                      payload_hash])


def signature(secret, amz_date, scope, region, creq):
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region), sts.encode(),
                    hashlib.sha256).hexdigest()


def self_test():
    """AWS's documented example: GET Object with a Range header."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    headers = {"host": ["examplebucket.s3.amazonaws.com"], "range": ["bytes=0-9"],
               "x-amz-content-sha256": [EMPTY_SHA], "x-amz-date": ["20130524T000000Z"]}
    signed = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
    creq = canonical_request("GET", "/test.txt", "", headers, signed, EMPTY_SHA)
    got = signature(secret, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                    "us-east-1", creq)
    want = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    if got != want:
        sys.exit("sigv4_s3: self-test against AWS's example failed: %s != %s" % (got, want))


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/s3/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg = None

    def log_message(self, fmt, *args):
        pass

    def say(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    # ---- answers ----
    def answer(self, code, body=b"", ctype="application/xml", extra=None):
        extra = extra or {}
        self.send_response(code)
        for k, v in extra.items():
            self.send_header(k, v)
        if "Content-Length" not in extra:
            self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", ctype)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, code, s3code, msg):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                "<Message>%s</Message></Error>" % (s3code, msg)).encode()
        self.answer(code, body)

    # ---- the signature ----
    def verify(self, body):
        """None when the signature holds, else why not."""
        auth = self.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            return "no AWS4-HMAC-SHA256 Authorization header"
        key, date, region, signed_s, sig = m.groups()
        if key != self.cfg.access_key:
            return "unknown access key %s" % key
        if region != self.cfg.region:
            return "region %s, not %s" % (region, self.cfg.region)
        signed = signed_s.split(";")
        if signed != sorted(signed) or "host" not in signed or "x-amz-date" not in signed:
            return "SignedHeaders must be sorted and name host and x-amz-date"
        amz_date = self.headers.get("x-amz-date", "")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return "bad x-amz-date %r" % amz_date
        if amz_date[:8] != date:
            return "x-amz-date is not the credential's date"
        if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900:
            return "x-amz-date more than 15 minutes off"
        payload = self.headers.get("x-amz-content-sha256")
        if payload is None:
            return "no x-amz-content-sha256"
        if payload != UNSIGNED and payload != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's digest"
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        for name in signed:
            if name not in headers:
                return "signed header %s is missing" % name
        for name in headers:
            if name.startswith("x-amz-") and name not in signed:
                return "header %s is not signed" % name
        path, _, query = self.path.partition("?")
        creq = canonical_request(self.command, path, query, headers, signed, payload)
        want = signature(self.cfg.secret, amz_date, "%s/%s/s3/aws4_request" % (date, region),
                         region, creq)
        if not hmac.compare_digest(want, sig):
            return "signature mismatch"
        return None

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        out = bytearray()
        while len(out) < n:
            c = self.rfile.read(min(1 << 20, n - len(out)))
            if not c:
                break
            out += c
        return bytes(out)

    def handle_one(self):
        body = self.read_body()
        why = self.verify(body)
        path = self.path.partition("?")[0]
        if why:
            self.say("SIGV4-REFUSED %s %s: %s" % (self.command, path, why))
            return self.error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match: " + why)
        self.say("SIGV4-OK %s %s" % (self.command, path))
        parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
        if parts[0] != self.cfg.bucket:
            return self.error(404, "NoSuchBucket", "no bucket " + parts[0])
        key = parts[1] if len(parts) > 1 else ""
        if ".." in key.split("/") or key.startswith("/"):
            return self.error(400, "InvalidArgument", "bad key")
        q = urllib.parse.parse_qs(self.path.partition("?")[2], keep_blank_values=True)
        getattr(self, "do_s3_" + self.command)(key, q, body)

    def obj(self, key):
        return os.path.join(self.cfg.dir, "objects", key)

    def do_s3_HEAD(self, key, q, body):
        p = self.obj(key)
        if not key or not os.path.isfile(p):
            return self.answer(404, extra={"Content-Length": "0"})
        self.answer(200, extra={"Content-Length": str(os.path.getsize(p)), "ETag": '"x"'})

    def do_s3_GET(self, key, q, body):
        if not key:
            return self.list(q)
        p = self.obj(key)
        if not os.path.isfile(p):
            return self.error(404, "NoSuchKey", "no such key")
        size = os.path.getsize(p)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(p, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)

    def list(self, q):
        prefix = q.get("prefix", [""])[0]
        root = os.path.join(self.cfg.dir, "objects")
        items = []
        for d, _, files in os.walk(root):
            for f in files:
                full = os.path.join(d, f)
                k = os.path.relpath(full, root)
                if k.startswith(prefix):
                    st = os.stat(full)
                    mod = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
                    items.append("<Contents><Key>%s</Key><LastModified>%s</LastModified>"
                                 "<Size>%d</Size></Contents>"
                                 % (k, mod.strftime("%Y-%m-%dT%H:%M:%S.000Z"), st.st_size))
        items.sort()
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>%s</Name>"
                "<Prefix>%s</Prefix><KeyCount>%d</KeyCount><IsTruncated>false</IsTruncated>%s"
                "</ListBucketResult>" % (self.cfg.bucket, prefix, len(items), "".join(items)))
        self.answer(200, body.encode())

    def store(self, key, data):
        p = self.obj(key)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp-" + secrets.token_hex(4)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p)

    def do_s3_PUT(self, key, q, body):
        if "uploadId" in q:
            d = os.path.join(self.cfg.dir, "uploads", q["uploadId"][0])
            if not os.path.isdir(d):
                return self.error(404, "NoSuchUpload", "no such upload")
            n = int(q["partNumber"][0])
            with open(os.path.join(d, "%05d" % n), "wb") as f:
                f.write(body)
            self.say("PART %d of %s" % (n, key))
            return self.answer(200, extra={"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        src = self.headers.get("x-amz-copy-source")
        if src:
            sk = urllib.parse.unquote(src).lstrip("/").split("/", 1)[1]
            if not os.path.isfile(self.obj(sk)):
                return self.error(404, "NoSuchKey", "no such key")
            with open(self.obj(sk), "rb") as f:
                self.store(key, f.read())
            return self.answer(200, b"<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>")
        self.store(key, body)
        self.answer(200, extra={"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def do_s3_POST(self, key, q, body):
        if "uploads" in q:
            uid = secrets.token_hex(8)
            os.makedirs(os.path.join(self.cfg.dir, "uploads", uid))
            return self.answer(200, ("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s"
                                     "</Key><UploadId>%s</UploadId>"
                                     "</InitiateMultipartUploadResult>"
                                     % (self.cfg.bucket, key, uid)).encode())
        if "uploadId" in q:
            d = os.path.join(self.cfg.dir, "uploads", q["uploadId"][0])
            nums = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
            if not os.path.isdir(d) or not nums:
                return self.error(400, "InvalidPart", "no such upload or parts")
            data = b"".join(open(os.path.join(d, "%05d" % n), "rb").read() for n in nums)
            self.store(key, data)
            shutil.rmtree(d)
            self.say("COMPLETED %s (%d parts)" % (key, len(nums)))
            return self.answer(200, ("<CompleteMultipartUploadResult><Key>%s</Key><ETag>\"x\""
                                     "</ETag></CompleteMultipartUploadResult>" % key).encode())
        self.error(400, "InvalidRequest", "unsupported POST")

    def do_s3_DELETE(self, key, q, body):
        if "uploadId" in q:
            shutil.rmtree(os.path.join(self.cfg.dir, "uploads", q["uploadId"][0]),
                          ignore_errors=True)
        elif os.path.isfile(self.obj(key)):
            os.unlink(self.obj(key))
        self.answer(204)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--port", type=int, default=0)
    cfg = ap.parse_args()
    cfg.secret = open(cfg.secret_file).read().strip()
    self_test()
    os.makedirs(os.path.join(cfg.dir, "objects"), exist_ok=True)
    os.makedirs(os.path.join(cfg.dir, "uploads"), exist_ok=True)
    Handler.cfg = cfg
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
