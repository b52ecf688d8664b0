#!/usr/bin/env python3
"""spflood.py HOST PORT CONNS FRAMES SIZE: send frames nobody signed to a
scheduler's worker port, as a stranger could.

Speaks nng's SP over TCP by hand: an 8-byte greeting each way (0, 'S',
'P', 0, protocol as 16 bits big-endian, 2 zero bytes; REQ0 is 0x30), then
frames of an 8-byte big-endian length and the payload (for REQ0: a 4-byte
request id with the top bit set, then the body). CONNS connections send
FRAMES frames of SIZE bytes each, at once (dialling again when the
scheduler closes one); the body is not a Cairn message, so each must be
refused. Prints how many frames went out."""
import socket
import struct
import sys
import threading

host, port, conns, frames, size = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
sent = 0
lock = threading.Lock()


def connect():
    s = socket.create_connection((host, port), timeout=30)
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    got = b""
    while len(got) < 8:
        b = s.recv(8 - len(got))
        if not b:
            raise OSError("closed in the greeting")
        got += b
    return s


def one(k):
    global sent
    body = b"CRN\x01" + bytes([k % 251]) * (size - 8)
    i = tries = 0
    s = None
    while i < frames and tries < 10 * frames:
        tries += 1
        try:
            if s is None:
                s = connect()
            payload = struct.pack(">I", 0x80000000 | (i + 1)) + body
            s.sendall(struct.pack(">Q", len(payload)) + payload)
            i += 1
            with lock:
                sent += 1
        except OSError:
            # the scheduler closes a stranger's connection after a big
            # frame: dial again, as an attacker would
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()


ts = [threading.Thread(target=one, args=(k,)) for k in range(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(sent)
