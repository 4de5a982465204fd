"""Ordo's analysis core: clusters, 2-D maps and their quality metrics over embedding vectors.

Plain numpy/scikit-learn code with no gRPC, Qdrant or CLI imports: the servicers and the worker fetch vectors
through the ports, call these functions and convert the results at the boundary.

- ``clustering``: DBSCAN (with an automatic eps), HDBSCAN and a k-means baseline on cosine distance, plus
  medoids, stable cluster identities across runs and incremental assignment of new points.
- ``projection``: t-SNE (openTSNE when installed, else scikit-learn) and PCA to 2-D.
- ``metrics``: purity, NMI, ARI, noise fraction and a sampled silhouette.

Dependencies point one way, from the runs down to the algorithms: ``service`` (the ``AnalysisCore`` facade)
→ ``clustering_job`` / ``projection_job`` / ``assignment`` (each on ``runner``'s run life cycle)
→ ``clustering`` / ``projection`` → ``graph_clustering`` / ``density_space`` / ``umap_projection``
→ ``large_scale`` → ``vectors`` (validation). No algorithm imports the module that orchestrates it.

Every entry point takes L2-normalised embeddings as an ``(n, d)`` array, validates it and raises
``ordo.errors.InvalidInput`` with a readable message when it cannot be used. Submodules are imported
explicitly (``from ordo.analysis.clustering import cluster``) so importing this package stays cheap.
"""
