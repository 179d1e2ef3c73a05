"""The operator surface: the `wire` command line (`cli`, `dedup_cli`), the
one-machine runner (`run`, `redis_server`, `malloc`), the HTTP server
(`serve`) and the operations it offers (`status`, `reingest`, `dlq`).
"""
