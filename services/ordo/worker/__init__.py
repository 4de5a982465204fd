"""The embedding worker: a Celery app whose one task runs ``ordo.core.embedding_pipeline``."""
