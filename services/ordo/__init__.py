"""Ordo: turn a large pile of unlabeled images into organised, searchable meaning."""

__version__ = "0.1.0"
