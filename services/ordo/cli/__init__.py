"""The `ordo` command line: a gRPC client, plus the commands that run the services."""
