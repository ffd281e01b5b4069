"""A webhook receiver for the local demo: verifies Standard Webhooks signatures and prints each delivery.

Run alone with `python -m deploy.local.receiver --port 8099 --secret whsec_...`; `make run` starts it for you.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def make_handler(secret: str, out=sys.stdout) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers 204 to correctly signed POSTs and 401 to anything else."""
    webhook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                payload = webhook.verify(body, headers)
            except WebhookVerificationError as exc:
                self.send_response(401)
                self.end_headers()
                print(f"[receiver] REJECTED unsigned or forged delivery: {exc}", file=out, flush=True)
                return
            self.send_response(204)
            self.end_headers()
            print(
                f"[receiver] verified webhook {headers.get('webhook-id')}:\n"
                f"{json.dumps(payload, indent=2, ensure_ascii=False)}",
                file=out,
                flush=True,
            )

        def log_message(self, format: str, *args: object) -> None:  # quiet: the print above says it all
            return

    return Handler


def serve(port: int, secret: str) -> ThreadingHTTPServer:
    """Start the receiver on 127.0.0.1:port (the caller runs serve_forever)."""
    return ThreadingHTTPServer(("127.0.0.1", port), make_handler(secret))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", required=True, help="the channel's whsec_ signing secret")
    args = parser.parse_args()
    server = serve(args.port, args.secret)
    print(f"[receiver] listening on http://127.0.0.1:{args.port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
