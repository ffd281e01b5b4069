"""Fixtures of the ingest integration tests: a hostile-capable HTTP feed server and a topic reader."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.events import decode


@dataclass
class FeedServer:
    """Documents served on 127.0.0.1 with ETags; counts requests and 304 answers per path."""

    base: str
    documents: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    not_modified: dict[str, int] = field(default_factory=dict)
    failures_left: dict[str, int] = field(default_factory=dict)

    def put(self, path: str, body: bytes, content_type: str = "text/plain") -> str:
        self.documents[path] = (body, content_type)
        return self.base + path


def _handler(server: FeedServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            path = self.path
            server.requests[path] = server.requests.get(path, 0) + 1
            if path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.end_headers()
                return
            if path == "/to-ftp":
                self.send_response(301)
                self.send_header("Location", "ftp://127.0.0.1/feed.xml")
                self.end_headers()
                return
            if path == "/endless":
                # No Content-Length: the client must count what it reads.
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(64):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if server.failures_left.get(path, 0) > 0:
                server.failures_left[path] -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path not in server.documents:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, content_type = server.documents[path]
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                server.not_modified[path] = server.not_modified.get(path, 0) + 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1 in a thread, honouring If-None-Match."""
    state = FeedServer(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


async def read_topic(
    bootstrap: str, namespace: str, topic: topics.Topic, *, expect: int, deadline_s: float = 15.0, settle: float = 1.0
) -> list[tuple[dict, object, bytes]]:
    """Every message on a topic: wait until `expect` have arrived, then `settle` seconds more for extras."""
    name = topic.qualified(namespace)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[tuple[dict, object, bytes]] = []
        deadline = time.monotonic() + deadline_s
        settled_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    envelope, event = decode(record.value)
                    out.append((envelope, event, record.key))
            if len(out) >= expect:
                settled_at = settled_at or time.monotonic() + settle
                if time.monotonic() >= settled_at:
                    break
        return out
    finally:
        await consumer.stop()
