"""Fetching: the only code that sees `requests`.

`http` (limits, the address guard, one GET), `politeness` (robots.txt,
per-host pacing and pauses, the bot-wall breaker), `fetcher` (conditional
GET and permanent skips on top of both) and `page_store` (page bytes at
rest in Redis between the fetch and process stages).
"""
