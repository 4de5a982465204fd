"""Ordo benchmarks: `make bench` (= `python -m bench.run`). See bench/run.py."""
