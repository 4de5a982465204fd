"""Adapters: concrete implementations of the ``ordo.ports`` interfaces (embedded and server backends)."""
