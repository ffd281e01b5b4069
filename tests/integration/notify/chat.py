"""Loopback Teams and Slack receivers that answer as Microsoft's and Slack's do: 400 to a message of the wrong
shape, else 202 (Teams) or 200 (Slack), or what a test scripted (429 with Retry-After when busy)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from services.notify.store import models
from tests.conftest import free_port


def teams_shape_errors(message: Any) -> list[str]:
    """What a Workflows webhook would reject: the message envelope and Adaptive Card 1.4 essentials."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["not a message"]
    attachments = message.get("attachments") or []
    if len(attachments) != 1 or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive":
        return ["not one adaptive card attachment"]
    card = attachments[0].get("content") or {}
    errors = []
    if (card.get("type"), card.get("version")) != ("AdaptiveCard", "1.4"):
        errors.append("not an AdaptiveCard 1.4")
    for element in card.get("body", []):
        if element.get("type") == "TextBlock" and not isinstance(element.get("text"), str):
            errors.append("TextBlock without text")
        elif element.get("type") == "FactSet" and not all(
            isinstance(f.get("title"), str) and isinstance(f.get("value"), str) for f in element.get("facts", [])
        ):
            errors.append("FactSet with a fact that is not two strings")
        elif element.get("type") not in ("TextBlock", "FactSet"):
            errors.append(f"unexpected element {element.get('type')}")
    for action in card.get("actions", []):
        if action.get("type") != "Action.OpenUrl" or not urlsplit(action.get("url", "")).scheme:
            errors.append("action that is not an Action.OpenUrl with a URL")
    return errors


def slack_shape_errors(message: Any) -> list[str]:
    """What an incoming webhook would reject (invalid_blocks, no_text)."""
    if not isinstance(message, dict) or not isinstance(message.get("text"), str) or not message["text"]:
        return ["no text fallback"]
    errors = []
    blocks = message.get("blocks", [])
    if not 0 < len(blocks) <= 50:
        errors.append("blocks missing or more than 50")
    for block in blocks:
        kind = block.get("type")
        if kind == "section" and block.get("text", {}).get("type") not in ("mrkdwn", "plain_text"):
            errors.append("section without text")
        elif kind == "context" and not block.get("elements"):
            errors.append("context without elements")
        elif kind == "actions" and not all(e.get("type") == "button" and e.get("url") for e in block["elements"]):
            errors.append("actions that are not link buttons")
        elif kind not in ("section", "context", "actions"):
            errors.append(f"unexpected block {kind}")
    return errors


@dataclass
class ChatReceiver:
    """A loopback Teams or Slack endpoint: records each POST, answers 400 to a wrong shape, else from a script."""

    port: int
    received: list[tuple[float, str, dict[str, Any], int]] = field(default_factory=list)  # (time, path, body, status)
    scripts: dict[str, deque[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        self.scripts[path] = deque(answers)

    def to(self, path: str) -> list[tuple[float, str, dict[str, Any], int]]:
        with self.lock:
            return [r for r in self.received if r[1] == path]

    def accepted(self, path: str) -> list[dict[str, Any]]:
        return [body for _, _, body, status in self.to(path) if status in (200, 202)]


def serve_chat_receiver() -> Iterator[ChatReceiver]:
    """A receiver on a free loopback port, served until the generator closes."""
    receiver = ChatReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            check = teams_shape_errors if self.path.startswith("/teams") else slack_shape_errors
            with receiver.lock:
                errors = check(body)
                script = receiver.scripts.get(self.path)
                status, headers = (
                    (400, {})
                    if errors
                    else (script.popleft() if script else ((202 if self.path.startswith("/teams") else 200), {}))
                )
                receiver.received.append((time.monotonic(), self.path, body, status))
            reply = ("; ".join(errors) or ("ok" if status < 300 else "rate_limited")).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def add_chat(s, org: models.Organisation, kind: str, url: str, language: str = "en") -> models.Channel:
    channel = models.Channel(organisation_id=org.id, kind=kind, target=url, language=language)
    s.add(channel)
    s.flush()
    return channel
