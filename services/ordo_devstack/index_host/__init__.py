"""The development index host (``ordo ops index-host``): one vector index lent to several local processes
over gRPC (``ordo.v1.IndexHostService``), with a per-run bearer token. See ``server`` and ``client``."""
