"""Moved to ``ordo_devstack.index_host`` (development topology). Only ``client`` is re-exported, for
``ordo.app.create_vector_index``'s ``ordo-index://`` URLs until it imports the new path; then delete this
package."""
