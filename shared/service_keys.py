"""Service API keys configured by operators (ingest push keys, scoring read keys).

Only the sha256 digest of a key is configured; a presented key is compared against every digest in constant
time. An entry reads `[name=]<sha256 hex>[:scope[+scope...]][:public|restricted|government]`, e.g.
`analysts=9f86…:ingest` or `2c26…:government`. Organisation keys of the notifier live in its database instead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from shared.events import Classification

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_SCOPES = re.compile(r"^[a-z]+(\+[a-z]+)*$")
_CLEARANCES = {c.value for c in Classification}
KEY_FORMAT = "[name=]<64 hex sha256>[:scope[+scope]][:public|restricted|government]"


@dataclass(frozen=True)
class StaticKey:
    """One configured key: a name for logs, its digest (never the key), its scopes and clearance."""

    name: str
    digest: bytes
    scopes: frozenset[str]
    clearance: Classification = Classification.PUBLIC

    def cleared_for(self, level: Classification) -> bool:
        """Whether the key may see (and so enter) a signal of this classification."""
        return self.clearance.allows(level)

    def __repr__(self) -> str:  # a digest is not a secret, but it has no business in logs either
        return f"StaticKey(name={self.name!r}, scopes={sorted(self.scopes)}, clearance={self.clearance.value})"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest kept instead of a key or token: configured for static keys, stored for the notifier's.

    Every mews key is random (at least 128 bits), so neither a salt nor a slow hash would add anything."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_keys(spec: str, scopes_known: frozenset[str] = frozenset({"ingest", "read"})) -> tuple[StaticKey, ...]:
    """Parse a comma list of key entries; a bad entry raises naming its position, never its content."""
    keys = []
    for position, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        name, _, rest = entry.rpartition("=")
        digest, *qualifiers = rest.lower().split(":")
        scopes: frozenset[str] = frozenset()
        clearance = Classification.PUBLIC
        valid = bool(_DIGEST.match(digest)) and (not name or bool(_NAME.match(name))) and len(qualifiers) <= 2
        for qualifier in qualifiers:
            if qualifier in _CLEARANCES:
                clearance = Classification(qualifier)
            elif _SCOPES.match(qualifier) and not scopes and set(qualifier.split("+")) <= scopes_known:
                scopes = frozenset(qualifier.split("+"))
            else:
                valid = False
        if not valid:
            raise ValueError(f"API key entry {position} is not '{KEY_FORMAT}'")
        keys.append(
            StaticKey(name=name or f"key{digest[:8]}", digest=bytes.fromhex(digest), scopes=scopes, clearance=clearance)
        )
    return tuple(keys)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def find_key(presented: str | None, keys: tuple[StaticKey, ...]) -> StaticKey | None:
    """The configured key matching a presented one, compared in constant time against every key."""
    if not presented:
        return None
    digest = bytes.fromhex(hash_key(presented))
    found = None
    for key in keys:  # no early exit: the time taken does not say which entry matched
        if hmac.compare_digest(digest, key.digest):
            found = key
    return found
