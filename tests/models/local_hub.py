"""A local hub on the loopback address: repositories in the Hugging Face hub's URL layout and plain files.

`LocalHub` serves, from memory, on ``http://127.0.0.1:PORT``:

- ``/{repo}/resolve/{revision}/{file}`` (``revision`` a branch name or the commit) with the
  headers huggingface_hub reads on its HEAD call: ``X-Repo-Commit``, ``ETag`` (the git blob
  id of a small file), and for LFS files ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``;
  a missing file is a 404 with ``X-Error-Code: EntryNotFound``;
- any other added path (``/models/NAME.pth``, torchvision's layout), with an ``ETag``;
- ``Range: bytes=N-`` requests (206), as resumed downloads send them.

Faults on demand: `cut_once` paths send their full ``Content-Length`` but only half the body
and then drop the connection (once each); `tamper` paths serve other bytes under the same
headers. `requests` logs (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    def __init__(self):
        self.files: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.repos: dict[str, str] = {}  # repo id → commit
        self.cut_once: set[str] = set()
        self.tamper: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, repo_id: str, folder: Path, *, revision: str = "main", skip: tuple[str, ...] = ()) -> str:
        """Serve the files of `folder` as repository `repo_id` at `revision` and at its commit; the commit."""
        commit = hashlib.sha1(repo_id.encode() + b"@" + revision.encode()).hexdigest()
        self.repos[repo_id] = commit
        for path in sorted(folder.iterdir()):
            if path.name in skip:
                continue
            data = path.read_bytes()
            headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}
            if path.suffix in LFS_SUFFIXES:
                headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
                headers["X-Linked-Size"] = str(len(data))
            for rev in (revision, commit):
                self.files[f"/{repo_id}/resolve/{rev}/{path.name}"] = (data, headers)
        return commit

    def add_file(self, path: str, data: bytes) -> None:
        self.files[path] = (data, {"ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

    def hf_path(self, repo_id: str, name: str, revision: str = "main") -> str:
        return f"/{repo_id}/resolve/{revision}/{name}"

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GET requests of `path` (None: the whole file)."""
        return [rng for method, p, rng in self.requests if method == "GET" and p == path]


def _handler(hub: LocalHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if path not in hub.files:
                return self._not_found(path)
            data, headers = hub.files[path]
            if path in hub.tamper:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            rng = self.headers.get("Range")
            if body and rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
            self.send_response(206 if start else 200)
            for key, value in headers.items():
                self.send_header(key, value)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not body:
                return
            if path in hub.cut_once and start == 0:
                hub.cut_once.discard(path)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
                self.close_connection = True
                return
            self.wfile.write(data[start:])

        def _not_found(self, path: str) -> None:
            repo = next((r for r in hub.repos if path.startswith(f"/{r}/resolve/")), None)
            self.send_response(404)
            if repo is not None:
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", hub.repos[repo])
            else:
                self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def silent_port() -> tuple[socket.socket, str]:
    """A listening socket that never answers (a firewall that drops packets); its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    host, port = sock.getsockname()
    return sock, f"http://{host}:{port}"
