"""wire: a news-wire ingestion worker."""

__version__ = "0.1.0"
