"""Re-export of ``ordo_devstack.index_host.client`` for ``ordo.app`` (see this package's docstring)."""

from ordo_devstack.index_host.client import HostedVectorIndex, read_token

__all__ = ["HostedVectorIndex", "read_token"]
