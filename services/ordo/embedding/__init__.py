"""Embedders: models that map images and texts into one vector space."""
