"""Benchmarks: python -m bench.<area> (PostgreSQL and Redis; see each module)."""
