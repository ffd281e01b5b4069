"""Pieces the benchmarks share: a loopback webhook receiver, throwaway PostgreSQL and Alertmanager instances,
code trees of earlier commits, and the figures they print. Not a benchmark itself (`make bench` runs bench/*.py)."""
