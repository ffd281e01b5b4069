"""Pure indicator formulas: no Kafka, no clock, no I/O."""
