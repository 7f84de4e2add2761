"""Benchmarks of opsloop. Run from the repository root: `python -m bench.ack_latency`."""
