#!/usr/bin/python3
"""A webhook receiver for test_notify.sh: http.server on 127.0.0.1.

usage: notify_receiver.py DIR PORT FAIL
Listens on PORT (0: any; the port is written to DIR/port), answers the
first FAIL requests with 500 and the others with 200. Each request N is
kept as DIR/req-N.body (the bytes as received), DIR/req-N.sig (its
X-Cairn-Signature header) and a line "N STATUS EVENT_ID EVENT" appended
to DIR/log. DIR/count holds how many requests it has already seen (kept
across restarts, so FAIL counts them all).
"""
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

folder, port, fail = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
count_file = os.path.join(folder, "count")


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
        with open(count_file, "w") as f:
            f.write(str(n))
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(os.path.join(folder, "req-%d.body" % n), "wb") as f:
            f.write(body)
        with open(os.path.join(folder, "req-%d.sig" % n), "w") as f:
            f.write(self.headers.get("X-Cairn-Signature", ""))
        status = 500 if n <= fail else 200
        try:
            ev = json.loads(body)
            eid, name = ev.get("event_id", "?"), ev.get("event", "?")
        except ValueError:
            eid, name = "?", "?"
        with open(os.path.join(folder, "log"), "a") as f:
            f.write("%d %d %s %s\n" % (n, status, eid, name))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
srv = HTTPServer(("127.0.0.1", port), Hook)
with open(os.path.join(folder, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(folder, "port.tmp"), os.path.join(folder, "port"))
srv.serve_forever()
