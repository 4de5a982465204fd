"""Ports: the small interfaces the core needs from the outside world. Each has an embedded adapter
and a server adapter in ``ordo.adapters``, and one conformance suite in ``tests/conformance``."""
