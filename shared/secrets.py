"""What production refuses: the demo credentials of `make run`, and secrets too short or too uniform to be random.

A secret is strong enough when it has at least 32 characters and an estimated 128 bits or more, the estimate
being its length times the entropy of its own character frequencies. That admits `secrets.token_urlsafe(32)`
(43 characters, about 210 bits) and `openssl rand -hex 32` (64 characters, about 250 bits), and refuses
32 x `a` (0 bits) or a short word repeated. Static API keys are configured as digests, so for them only the
digests of the demo keys can be refused.
"""

from __future__ import annotations

import math
from collections import Counter

from shared.service_keys import hash_key

# Development-only credentials: `make run` prints them; every service refuses them outside development.
DEMO_INGEST_KEY = "mews-demo-ingest-key"
DEMO_READ_KEY = "mews-demo-read-key"
DEMO_ADMIN_TOKEN = "mews-demo-bootstrap-token"  # noqa: S105 - a documented local demo credential
DEMO_KEY_DIGESTS = frozenset(bytes.fromhex(hash_key(k)) for k in (DEMO_INGEST_KEY, DEMO_READ_KEY))

MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128.0


def estimated_bits(secret: str) -> float:
    """Length times the Shannon entropy of the secret's own character frequencies, in bits."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    n = len(secret)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values())


def weakness(secret: str) -> str | None:
    """Why a secret is too weak for production, or None when it is strong enough."""
    if secret in (DEMO_INGEST_KEY, DEMO_READ_KEY, DEMO_ADMIN_TOKEN):
        return "is a demo credential"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    if estimated_bits(secret) < MIN_SECRET_BITS:
        return f"has too little variety to be random (under {MIN_SECRET_BITS:.0f} bits)"
    return None


def refuse_weak(name: str, secret: str) -> None:
    """Raise ValueError naming the setting (never the secret) when `secret` is weak."""
    reason = weakness(secret)
    if reason is not None:
        raise ValueError(f"{name} {reason}; production needs a random secret, e.g. `openssl rand -hex 32`")
