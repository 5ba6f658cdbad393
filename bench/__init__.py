"""Strata's benchmarks: ``python -m bench.run`` (see README, Benchmarks)."""
