"""Benchmarks of the baked PostgreSQL service against raw asyncpg: see README.md."""
