"""Short-lived signed links to one medium: photos[].url in the order view.

Whoever holds a link reads that medium's bytes until it expires, without a token: the mini-program's <image> and a
phone's browser send none, and phones may not reach the bucket, so sidan serves the bytes itself. The signature is
an HMAC-SHA256 of the medium's id and the expiry, keyed with a key derived from the JWT secret (a leaked link names
one medium for at most media.link_minutes, and a new JWT secret voids every link). Expiries are rounded up to
ROUND_SECONDS so that an order viewed twice gives the same URLs and the phone's cache holds.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from datetime import datetime

from orders.config import Settings

PATH = "/api/v1/media/{id}"
ROUND_SECONDS = 300
SIGNATURE_CHARS = 32  # 128 bits of the HMAC


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.auth.jwt_secret.encode(), b"sidan media links v1", hashlib.sha256).digest()


def signature(settings: Settings, media_id: int, expires: int) -> str:
    message = f"media:{media_id}:{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]


def expiry(settings: Settings, now: datetime) -> int:
    return math.ceil((now.timestamp() + settings.media.link_minutes * 60) / ROUND_SECONDS) * ROUND_SECONDS


def signed_url(settings: Settings, media_id: int, now: datetime) -> str:
    """The absolute link (SIDAN_APP_PUBLIC_URL) to one medium, valid for media.link_minutes."""
    expires = expiry(settings, now)
    return (f"{settings.app.public_url}{PATH.format(id=media_id)}"
            f"?expires={expires}&sig={signature(settings, media_id, expires)}")


def linker(settings: Settings, now: datetime) -> Callable[[int], str]:
    """signed_url for the media of one answer, all with the same expiry."""
    return lambda media_id: signed_url(settings, media_id, now)


def verify(settings: Settings, media_id: int, expires: str | None, sig: str | None, now: datetime) -> bool:
    """True when the link was made by us for this medium and has not expired."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < now.timestamp():
        return False
    return hmac.compare_digest(sig.encode(), signature(settings, media_id, int(expires)).encode())
