"""Benchmarks: they measure and write results; tests never assert speed."""
