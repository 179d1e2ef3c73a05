"""The operator surface: the `wire` command line (`cli`, a package), the
one-machine runner (`run`, `redis_server`, `malloc`), the HTTP server
(`serve`) and the operations it offers (`status`, `reingest`, `dlq`).
"""
