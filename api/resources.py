"""External resources, one start/stop pair each: the database, the store, the classifier, the WeChat API client,
the media store."""
from __future__ import annotations

import gc
import logging

from orders import db
from orders.config import ConfigError, Settings
from orders.media_store import MediaStore, MediaStoreError, open_media_store
from orders.store import MemoryStore, RedisStore, open_store

log = logging.getLogger("sidan.resources")


async def start_database(settings: Settings) -> None:
    await db.init_db(settings.database.url)
    # Open the connection now, not in the first request: Tortoise (1.1.9) takes its SQLite lock and then connects
    # lazily inside the same `async with`; a request cancelled during that connect (its client gave up, as
    # requests queued while a worker starts do) leaves the lock taken for good and every later query waits.
    try:
        await db.ping()
    except Exception as exc:  # noqa: BLE001 - a database that is down at start is reported by /healthz
        log.warning("database not reachable at start (%s): /healthz reports it until it answers", type(exc).__name__)


async def stop_database() -> None:
    await db.close_db()


def start_store(settings: Settings) -> MemoryStore | RedisStore:
    return open_store(settings.redis.url)


def load_classifier(settings: Settings):
    """Loaded once per worker at start; training never happens inside a request."""
    from classifiers import Router

    path = settings.model_path()
    if not path.exists():
        raise SystemExit(
            f"分类模型不存在: {path}\nThe routing model is missing: run `sidan classify train` (make run does it)."
        )
    return Router.load(path)


def load_similarity(classifier):
    """How alike reports read (duplicates, hot spots), on the router's own features, once per worker; None for a
    classifier that is no Router (a test double): neither is then found."""
    from classifiers import Router
    from classifiers.similarity import TextSimilarity

    return TextSimilarity(classifier) if isinstance(classifier, Router) else None


def start_wechat_client(settings: Settings, store):
    """The outgoing WeChat API client (base URL from SIDAN_WECHAT_API_BASE); closed at stop."""
    from bot.wechat_api import WeChatClient

    return WeChatClient(settings, store)


def start_media_store(settings: Settings) -> MediaStore:
    """Local files (created now: a folder that cannot be made stops the start) or an S3-compatible bucket."""
    try:
        return open_media_store(settings.media.url)
    except MediaStoreError as exc:
        raise ConfigError(f"config key media.url (SIDAN_MEDIA_URL): {exc}") from None


async def stop_media_store(store: MediaStore) -> None:
    await store.close()


def media_fetcher(settings: Settings, wechat, media_store: MediaStore, clock=None):
    """The background download of residents' photos and voice out of WeChat into the media store."""
    from bot.media_source import WeChatMedia
    from orders.media_fetch import MediaFetcher

    return MediaFetcher(settings, WeChatMedia(wechat), media_store, clock=clock)


def unionid_lookups(wechat, clock=None, **options):
    """The background fetch of residents' unionids (cgi-bin/user/info), which links their two doors."""
    from bot.identity_source import WeChatUnionid
    from orders.unionid_lookup import UnionidLookups

    return UnionidLookups(WeChatUnionid(wechat), clock=clock, **options)


def freeze_startup_heap() -> None:
    """What a worker loads at start (the routing model, jieba's dictionary, the ORM's metadata) lives as long as the
    worker: moved out of the cyclic collector's sight, so a full collection no longer walks it. Each full collection
    stalls every request of the worker; measured in process: the longest went from 78 ms to 8 ms."""
    gc.collect()
    gc.freeze()
