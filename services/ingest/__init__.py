"""Ingest: price feeds, export-control news, trade and lead-time bulletins into Kafka."""
