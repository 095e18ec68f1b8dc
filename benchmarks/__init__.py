"""Benchmark scripts: run from the repo root as `python -m benchmarks.NAME`."""
