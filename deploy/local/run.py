"""`make run`: the whole system on this machine, with a demo tenant, a webhook receiver and the demo feed.

State lives in var/run and starts fresh each time. Ctrl-C stops everything this started.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

from deploy.local.receiver import serve
from deploy.local.stack import DEMO_INGEST_KEY, DEMO_READ_KEY, DEMO_SOURCES, ROOT, Ports, Stack

BANNER = """
mews is running (state in {state}, logs in {state}/logs)

  ingest   API  http://127.0.0.1:{p.ingest}/v1/     docs http://127.0.0.1:{p.ingest}/docs     \
metrics http://127.0.0.1:{p.ingest}/metrics
  scoring  API  http://127.0.0.1:{p.scoring}/v1/     docs http://127.0.0.1:{p.scoring}/docs     \
metrics http://127.0.0.1:{p.scoring}/metrics
  notify   API  http://127.0.0.1:{p.notify}/v1/     docs http://127.0.0.1:{p.notify}/docs     \
metrics http://127.0.0.1:{p.notify}/metrics
  console  http://127.0.0.1:{p.notify}/console   (sign in with a key below: the company's pages, or the
           ministry's crisis and ops desk pages)
  webhook receiver  http://127.0.0.1:{p.receiver}/   (verifies signatures, prints each delivery here)
  Kafka    {kafka}   topic namespace: {namespace}

Demo credentials (development only):
  ingest key          {ingest_key}
  scoring read key    {read_key}
  company admin key   {company_key}
  ministry admin key  {ministry_key}

Demo sign-in to the console at http://127.0.0.1:{p.notify}/console:
  Demo Radar Systems B.V. (company)               {company_key}
  Demo Ministry of Economic Affairs (government)  {ministry_key}

Try it: a 50 % jump in the gallium price becomes a signed webhook within seconds:

  curl -s -X POST http://127.0.0.1:{p.ingest}/v1/prices -H 'Authorization: Bearer {ingest_key}' \\
    -H 'Content-Type: application/json' -d '{{"items": [
      {{"material": "gallium", "price": 300, "currency": "USD", "unit": "kg",
        "observed_at": "2026-11-20T00:00:00Z"}},
      {{"material": "gallium", "price": 450, "currency": "USD", "unit": "kg",
        "observed_at": "2026-11-21T00:00:00Z"}}]}}'

  curl -s http://127.0.0.1:{p.scoring}/v1/risk -H 'Authorization: Bearer {read_key}'
  curl -s 'http://127.0.0.1:{p.notify}/v1/alerts?status=firing' -H 'Authorization: Bearer {company_key}'
  curl -s 'http://127.0.0.1:{p.notify}/v1/exposure?material=gallium' -H 'Authorization: Bearer {ministry_key}'

Ctrl-C stops everything.
"""


def ports_from_env() -> Ports:
    env = os.environ
    return Ports(
        ingest=int(env.get("MEWS_INGEST_PORT", 8001)),
        scoring=int(env.get("MEWS_SCORING_PORT", 8002)),
        notify=int(env.get("MEWS_NOTIFY_PORT", 8003)),
        receiver=int(env.get("MEWS_RECEIVER_PORT", 8099)),
        kafka=int(env.get("KAFKA_PORT", 9092)),
    )


def main() -> None:
    state = ROOT / "var" / "run"
    if (state / "kafka" / "kafka.pid").exists():
        Stack(state_dir=state, ports=ports_from_env())._stop_stale_kafka()
    shutil.rmtree(state, ignore_errors=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = Stack(
        state_dir=Path(state),
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        namespace=os.environ.get("MEWS_TOPIC_NAMESPACE", ""),
        ports=ports_from_env(),
        sources=DEMO_SOURCES,
    )
    print("starting Kafka and the services ...", flush=True)
    with stack:
        tenant = stack.provision_demo(f"http://127.0.0.1:{stack.ports.receiver}/")
        receiver = serve(stack.ports.receiver, tenant.webhook_secret)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        print(f"the ingest service is polling the demo feeds of {DEMO_SOURCES.relative_to(ROOT)} ...", flush=True)
        for name, health in sorted(stack.wait_sources_polled().items()):
            counts = " ".join(f"{k}={v}" for k, v in sorted(health["last_counts"].items()))
            print(f"  {name:32} {health['last_error'] or 'ok'}  {counts}", flush=True)
        print(
            BANNER.format(
                state=state,
                p=stack.ports,
                kafka=stack.kafka_bootstrap,
                namespace=stack.namespace or "(none)",
                ingest_key=DEMO_INGEST_KEY,
                read_key=DEMO_READ_KEY,
                company_key=tenant.company_key,
                ministry_key=tenant.ministry_key,
            ),
            flush=True,
        )
        try:
            while not stop.wait(1):
                for name, proc in stack.processes.items():
                    if proc.poll() is not None:
                        print(f"{name} exited with {proc.returncode}:\n{stack.tail(name)}", flush=True)
                        stop.set()
        except KeyboardInterrupt:
            pass
        print("\nstopping ...", flush=True)
        receiver.shutdown()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
