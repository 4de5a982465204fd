"""Ordo's development stack: the distributed topology on one machine, as real processes.

What a deployment gets from infrastructure (Redis, an S3 server, a Qdrant server, process supervision)
is stood in for here, so ``make up-distributed`` (``ordo ops up-distributed``), the fault tests and the
distributed benchmark run exactly the processes a deployment runs, without Docker:

* ``seaweedfs``: SeaweedFS (``weed mini``) as a local S3 server on free ports.
* ``index_host``: the index host (``ordo ops index-host``), one qdrant-client local-mode index lent to
  several processes over gRPC, standing in for a Qdrant server (which cannot be installed here).
* ``cluster``: a private Redis, the gRPC services and N workers as child processes, and the ``ORDO_*``
  settings they share.

The product package (``ordo``) does not import this one, except from the development commands
(``ordo ops up-distributed``, ``ordo ops index-host``) and for the ``ordo-index://`` URL scheme of the
index host's client. This package depends on ``ordo``, never the reverse.
"""
