"""A local stand-in for the climbmix host: serves a folder of shards in the public layout
(<url>/shard_00000.parquet) over HTTP with Range support, and can misbehave on purpose.

Faults, per file name (set with `faults` or, as a script, --cut NAME:BYTES / --corrupt NAME:TIMES):
  cut      the first response of that file stops after BYTES bytes (Content-Length says the whole
           file), as a dropped connection does
  corrupt  the first TIMES responses of that file send bytes of the right length that are not it

As a script (the worker's end-to-end test starts it): python shard_server.py DIR [--cut ...] prints
`url: http://127.0.0.1:PORT` and serves until killed. Every request is logged to stdout as
`GET <name> range=<header>`.
"""

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class ShardServer:
    def __init__(self, folder, cut=None, corrupt=None):
        self.folder = Path(folder)
        self.cut = dict(cut or {})          # name -> bytes, first response only
        self.corrupt = dict(corrupt or {})  # name -> responses left to corrupt
        self.requests = []                  # (name, range header or None)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                with server.lock:
                    server.requests.append((name, rng))
                    cut = server.cut.pop(name, None)
                    corrupt = server.corrupt.get(name, 0) > 0
                    if corrupt:
                        server.corrupt[name] -= 1
                print(f"GET {name} range={rng}", flush=True)
                path = server.folder / name
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                if corrupt:
                    data = bytes(len(data))  # the right size, none of the content
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0] or 0)
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # a dropped connection, mid-body
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def names_requested(self):
        return [n for n, _ in self.requests]


def fake_shard(i, size=50_000):
    """Bytes that pass the download's check (parquet's magic at both ends) but are not parquet:
    enough for the download path; reading them needs real parquet (pyarrow)."""
    body = bytes((i * 7 + j) % 251 for j in range(size))
    return b"PAR1" + body + b"PAR1"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--cut", action="append", default=[], help="NAME:BYTES")
    ap.add_argument("--corrupt", action="append", default=[], help="NAME:TIMES")
    args = ap.parse_args(argv)
    pair = lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1]))  # noqa: E731
    server = ShardServer(args.folder, dict(map(pair, args.cut)), dict(map(pair, args.corrupt)))
    print(f"url: {server.url}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
