"""Offline training jobs for Ordo's bundled models (run by maintainers, not by the service)."""
