#!/usr/bin/env python3
"""Loopback HTTP/1.1 reverse proxy in front of Azurite that records every request
and injects faults on a deterministic schedule, to exercise the Azure backend's
retries and check what it sends.

    faultproxy.py UPSTREAM_PORT SEED LOGFILE

Prints the port it listens on (127.0.0.1) as its first stdout line; one JSON line
per request received goes to LOGFILE. SIGTERM stops it.

The schedule is a hash of (seed, request identity, how many times that identity
was seen), not a global counter: the writer has several requests in flight, so
arrival order varies between runs while each request's fate does not.
"""
import base64
import hashlib
import json
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

FAULTS_PAGE = ["reset_mid_body", "reset_before", "503", "500", "stall"]
# stalls and Retry-After: 1 hold the writer for seconds: keep them rarer
WEIGHTS_PAGE = [3, 3, 4, 3, 1]
PAGE_RATE = 15  # percent of Put Page requests
OTHER_RATE = 5  # percent of every other request
STALL_S = 3.0


class Proxy:
    def __init__(self, upstream, seed, log_path):
        self.upstream = upstream
        self.seed = seed
        self.log = open(log_path, "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.seen = {}          # identity -> times seen
        self.last_faulted = {}  # identity -> whether its previous attempt was faulted

    def decide(self, ident, is_page):
        """Fault kind for this attempt of a request, or None."""
        with self.lock:
            n = self.seen.get(ident, 0)
            self.seen[ident] = n + 1
            if n == 0 and is_page and "/backoff?" in ident and "|bytes=0-" in ident:
                # fixed, long back-off for one request: the other requests of the
                # writer must go on meanwhile (checked by store_faults.sh)
                self.last_faulted[ident] = True
                return "503ra2", n
            if self.last_faulted.get(ident):
                # never twice in a row: the retry must be able to succeed
                self.last_faulted[ident] = False
                return None, n
            h = hashlib.sha256(f"{self.seed}|{ident}|{n}".encode()).digest()
            roll = h[0] * 100 // 256
            kind = None
            if is_page and roll < PAGE_RATE:
                pick = struct.unpack(">I", h[1:5])[0] % sum(WEIGHTS_PAGE)
                for k, wt in zip(FAULTS_PAGE, WEIGHTS_PAGE):
                    if pick < wt:
                        kind = k
                        break
                    pick -= wt
            elif not is_page and roll < OTHER_RATE:
                kind = "503" if h[1] & 1 else "500"
            if kind == "503":
                # mostly Retry-After: 0; now and then 1 to check it is honoured
                kind = "503ra1" if h[5] % 4 == 0 else "503ra0"
            self.last_faulted[ident] = kind is not None
            return kind, n

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry, sort_keys=True) + "\n")
            self.log.flush()


def read_line(f):
    line = f.readline(65537)
    if not line:
        raise EOFError
    return line


def read_head(f):
    """Start line and headers (list of (name, value)), or EOFError at a clean end."""
    start = read_line(f)
    while start in (b"\r\n", b"\n"):
        start = read_line(f)
    headers = []
    while True:
        line = read_line(f)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return start.decode("latin-1").rstrip("\r\n"), headers


def hget(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_chunked(f):
    body = bytearray()
    while True:
        size = int(read_line(f).split(b";")[0].strip(), 16)
        if size == 0:
            while read_line(f) not in (b"\r\n", b"\n"):
                pass
            return bytes(body)
        body += f.read(size)
        read_line(f)


def reset(sock):
    """Close with RST rather than FIN: what a dropped connection looks like."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def canned(status, reason, extra=""):
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>Injected{status}</Code>'
            f"<Message>injected by faultproxy</Message></Error>").encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nx-ms-request-id: faultproxy\r\n{extra}\r\n")
    return head.encode() + body


class Handler(socketserver.StreamRequestHandler):
    proxy = None  # set before serving

    def setup(self):
        super().setup()
        self.up = None
        self.upf = None

    def finish(self):
        self.close_upstream()
        try:
            super().finish()
        except OSError:
            pass

    def close_upstream(self):
        if self.up:
            try:
                self.upf.close()
                self.up.close()
            except OSError:
                pass
        self.up = self.upf = None

    def connect_upstream(self):
        if not self.up:
            self.up = socket.create_connection(("127.0.0.1", self.proxy.upstream))
            self.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.upf = self.up.makefile("rb")

    def handle(self):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while self.one_request():
                pass
        except (EOFError, ConnectionError, OSError, ValueError):
            pass

    def one_request(self):
        p = self.proxy
        start, headers = read_head(self.rfile)
        method, target, _ = start.split(" ", 2)
        query = target.partition("?")[2]
        is_page = method == "PUT" and "comp=page" in query.split("&")
        rng = hget(headers, "x-ms-range") or hget(headers, "Range")
        md5 = hget(headers, "Content-MD5")
        # snapshot ids are timestamps: leave them out so the schedule repeats run to run
        ident = "|".join([method, re.sub(r"snapshot=[^&]*", "snapshot=S", target),
                          rng or "", md5 or "",
                          hget(headers, "x-ms-page-write") or ""])
        kind, attempt = p.decide(ident, is_page)
        entry = {"id": ident, "t": round(time.monotonic(), 3),
                 "method": method, "target": target, "range": rng, "md5": md5,
                 "page": is_page, "fault": kind, "attempt": attempt,
                 "chunked": False, "body_len": None, "md5_ok": None}

        te = (hget(headers, "Transfer-Encoding") or "").lower()
        clen = int(hget(headers, "Content-Length") or 0)
        if kind == "reset_mid_body" and clen > 0 and "chunked" not in te:
            # take part of the body, then drop the connection under the client
            self.rfile.read(max(1, clen // 2))
            entry["body_len"] = -1
            p.record(entry)
            reset(self.connection)
            return False
        if "chunked" in te:
            body = read_chunked(self.rfile)
            entry["chunked"] = True
        else:
            body = self.rfile.read(clen) if clen else b""
            if len(body) != clen:
                raise EOFError
        entry["body_len"] = len(body)
        if md5 is not None:
            entry["md5_ok"] = base64.b64encode(hashlib.md5(body).digest()).decode() == md5
        p.record(entry)

        if kind in ("reset_before", "reset_mid_body"):
            reset(self.connection)
            return False
        if kind in ("503ra0", "503ra1", "503ra2"):
            ra = kind[-1]
            self.wfile.write(canned(503, "Service Unavailable", f"Retry-After: {ra}\r\n"))
            self.wfile.flush()
            return True
        if kind == "500":
            self.wfile.write(canned(500, "Internal Server Error"))
            self.wfile.flush()
            return True
        if kind == "stall":
            time.sleep(STALL_S)

        # forward: the body always goes on with a Content-Length
        out = [start]
        for k, v in headers:
            if k.lower() in ("transfer-encoding", "content-length", "expect"):
                continue
            out.append(f"{k}: {v}")
        if body or method in ("PUT", "POST"):
            out.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body
        if hget(headers, "Expect"):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            self.connect_upstream()
            self.up.sendall(raw)
            status_line, rh = read_head(self.upf)
        except (EOFError, ConnectionError):
            # a kept-alive upstream connection that Azurite closed: one fresh try
            self.close_upstream()
            self.connect_upstream()
            self.up.sendall(raw)
            status_line, rh = read_head(self.upf)
        status = int(status_line.split(" ", 2)[1])
        head = (status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in rh) + "\r\n")
        self.wfile.write(head.encode("latin-1"))
        close = (hget(rh, "Connection") or "").lower() == "close" or \
            (hget(headers, "Connection") or "").lower() == "close"
        rte = (hget(rh, "Transfer-Encoding") or "").lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in rte:
            while True:
                line = read_line(self.upf)
                self.wfile.write(line)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = read_line(self.upf)
                        self.wfile.write(t)
                        if t in (b"\r\n", b"\n"):
                            break
                    break
                self.copy(size + 2)
        elif hget(rh, "Content-Length") is not None:
            self.copy(int(hget(rh, "Content-Length")))
        else:
            # delimited by close
            while True:
                b = self.upf.read1(65536)
                if not b:
                    break
                self.wfile.write(b)
            close = True
        self.wfile.flush()
        if close:
            self.close_upstream()
        return not close

    def copy(self, n):
        while n > 0:
            b = self.upf.read(min(n, 1 << 20))
            if not b:
                raise EOFError
            self.wfile.write(b)
            n -= len(b)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 4:
        print("usage: faultproxy.py UPSTREAM_PORT SEED LOGFILE", file=sys.stderr)
        return 2
    Handler.proxy = Proxy(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    # shutdown() waits for serve_forever to return: call it off the main thread
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=srv.shutdown).start())
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    Handler.proxy.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
