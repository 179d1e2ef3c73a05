"""The operator's web console served by `wire serve` at `/`.

Server-rendered HTML (no JavaScript needed, no build step): `data` reads
Redis into plain dicts, `views` turns them into escaped HTML (pure), `auth`
keeps sessions and CSRF tokens in Redis, `handlers` routes requests and runs
actions through the same functions as the CLI and the JSON API
(`ops.reingest.run`, `ops.dlq.replay`, `ops.dlq.purge`). `activity` keeps the
per-minute snapshots behind its per-source hourly counts.
"""
