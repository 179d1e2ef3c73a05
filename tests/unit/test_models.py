"""Frozen values at stage borders: the fetch -> process message (`PageRef`)."""

from __future__ import annotations

import json

import pytest

from worker.models import PageRef

# A process task's message as the fetch stage wrote it before `PageRef` existed
# (an untyped dict): messages of that shape may still be queued after an upgrade.
QUEUED_BEFORE = {
    "url": "https://alpha.example/2021/07/06/story/",
    "source": "alpha",
    "final_url": "https://www.alpha.example/2021/07/06/story/",
    "page_key": "wire:page:0123456789abcdef0123:1625552100000",
    "charset": "utf-8",
    "etag": '"v1"',
    "last_modified": "Tue, 06 Jul 2021 06:15:00 GMT",
    "fetched_at": 1625552100.0,
    "published": "2021-07-06T06:00:00Z",
    "force": False,
}


def test_a_message_queued_in_the_old_dict_shape_is_read() -> None:
    """from_json reads the dict the fetch stage enqueued before, field for field."""
    ref = PageRef.from_json(json.loads(json.dumps(QUEUED_BEFORE)))  # as it comes out of the broker
    assert ref == PageRef(url=QUEUED_BEFORE["url"], source="alpha", final_url=QUEUED_BEFORE["final_url"],
                          page_key=QUEUED_BEFORE["page_key"], charset="utf-8", etag='"v1"',
                          last_modified="Tue, 06 Jul 2021 06:15:00 GMT", fetched_at=1625552100.0,
                          published="2021-07-06T06:00:00Z", force=False)


def test_the_message_keeps_its_keys() -> None:
    """to_json writes the same keys as before, so a worker not yet upgraded reads what a new one sends."""
    assert PageRef.from_json(QUEUED_BEFORE).to_json() == QUEUED_BEFORE


def test_a_message_without_where_the_page_is_is_refused() -> None:
    """A message missing the page's key or final URL is an error, not a page processed from nothing."""
    for key in ("url", "source", "final_url", "page_key"):
        with pytest.raises(KeyError):
            PageRef.from_json({k: v for k, v in QUEUED_BEFORE.items() if k != key})


def test_it_is_frozen() -> None:
    """A PageRef cannot be changed on its way through the process stage."""
    ref = PageRef.from_json(QUEUED_BEFORE)
    with pytest.raises(AttributeError):
        ref.page_key = "elsewhere"  # type: ignore[misc]
