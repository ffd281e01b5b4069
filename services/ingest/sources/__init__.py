"""Source adapters, one module per kind of source: bytes in, `Candidate`s (or `Malformed` records) out."""
