"""Ordo's core: plain domain logic. No gRPC, Celery or Qdrant imports here — only ports."""
