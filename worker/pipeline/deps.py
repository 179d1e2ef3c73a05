"""What every stage needs: the Redis client, settings, sources and keys (`Deps`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis

from ..dedup import Dedup
from ..errors import PermanentFetchError
from ..fetch.fetcher import Fetcher
from ..keys import Keys
from ..models import Source
from ..settings import Settings, SourcesConfig
from ..trail import Trail
from .furniture import FurnitureStore


@dataclass
class Deps:
    settings: Settings
    redis: Redis
    sources: SourcesConfig
    keys: Keys
    _fetcher: Fetcher | None = field(default=None, repr=False)
    _dedup: Dedup | None = field(default=None, repr=False)
    _furniture: FurnitureStore | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings, sources: SourcesConfig, client: Redis | None = None) -> Deps:
        client = client or Redis.from_url(
            settings.redis_url or settings.broker, socket_timeout=30, socket_connect_timeout=10,
            socket_keepalive=True, retry_on_timeout=True, health_check_interval=30)
        return cls(settings=settings, redis=client, sources=sources,
                   keys=Keys.for_prefix(settings.key_prefix, settings.items_stream))

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(self.redis, self.keys, self.settings)
        return self._fetcher

    @property
    def trail(self) -> Trail:
        """Writes to the URL trails (expiring with the dedup window)."""
        return Trail(self.keys, int(self.settings.dedup_window))

    @property
    def dedup(self) -> Dedup:
        if self._dedup is None:
            self._dedup = Dedup(self.redis, self.keys.dedup_ns(), window_seconds=int(self.settings.dedup_window))
        return self._dedup

    @property
    def furniture(self) -> FurnitureStore:
        if self._furniture is None:
            self._furniture = FurnitureStore(self.redis, self.keys)
        return self._furniture

    def source(self, name: str) -> Source:
        found = self.sources.get(name)
        if found is None:
            raise PermanentFetchError(f"unknown source {name!r}", reason="unknown_source")
        return found
