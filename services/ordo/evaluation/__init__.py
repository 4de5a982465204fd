"""Quality evaluations (retrieval, zero-shot) run against a live Ordo stack through its gRPC contracts."""
