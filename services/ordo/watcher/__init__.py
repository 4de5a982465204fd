"""The bucket watcher: ingest every new object under an S3 prefix, once (``ordo watch s3://bucket/prefix``)."""
