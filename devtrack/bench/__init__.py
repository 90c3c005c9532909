"""Benchmarking: inputs, the isolated worker process and the parent that runs it."""
