"""What production refuses to start with (`SIDAN_ENV=production`), and what `sidan check` and /readyz list: development
secrets and appids, empty AppSecrets, plaintext callbacks nobody asked for, a public address phones cannot open, and
a guessable JWT secret. Each problem names its config key and the variable that sets it."""
from __future__ import annotations

import ipaddress
import math
from collections import Counter
from urllib.parse import urlsplit

from orders.config import DEV_APPIDS, DEV_SECRETS, Settings, env_name

MIN_JWT_SECRET_BITS = 90  # the estimate undercounts random keys: `openssl rand -hex 16` (128 random bits) scores 95–125


def estimated_entropy_bits(secret: str) -> float:
    """Length × the Shannon entropy of its characters: low for repeated characters or a short alphabet; a secret
    that repeats one block ("abcd" × 12) is worth its block only."""
    block = next((size for size in range(1, len(secret) // 2 + 1)
                  if secret == (secret[:size] * (len(secret) // size + 1))[:len(secret)]), len(secret))
    secret = secret[:block]
    return sum(n * math.log2(len(secret) / n) for n in Counter(secret).values())


def production_problems(settings: Settings) -> list[str]:
    """Everything production refuses, each naming its key and the variable that sets it."""
    dumped = settings.model_dump()
    with_miniapp = bool(settings.wechat.miniapp_appid)
    problems: list[tuple[str, str, str]] = []
    for (section, key), dev_value in DEV_SECRETS.items():  # without a mini-program, its secret is not used
        if dumped[section][key] == dev_value and (with_miniapp or key != "miniapp_secret"):
            problems.append((section, key, "production refuses the development secret"))
    for (section, key), dev_value in DEV_APPIDS.items():
        if dumped[section][key] == dev_value:
            problems.append((section, key, f"production refuses the development appid {dev_value}"))
    if not settings.wechat.app_secret:
        problems.append(("wechat", "app_secret", "the official account's AppSecret is empty"))
    if with_miniapp and not settings.wechat.miniapp_secret:
        problems.append(("wechat", "miniapp_secret",
                         "the mini-program's AppSecret is empty (or set wechat.miniapp_appid empty: no mini-program)"))
    if not settings.wechat.aes_key and settings.wechat.encoding_mode != "plain":
        # plaintext callbacks are signed over the query only: production takes them only when the operator says so
        problems.append(("wechat", "aes_key", "production needs the official account's EncodingAESKey (safe mode), "
                                              "or SIDAN_WECHAT_ENCODING_MODE=plain to accept plaintext on purpose"))
    public_url = public_url_problem(settings.app.public_url)
    if public_url:
        problems.append(("app", "public_url", public_url))
    bits = estimated_entropy_bits(settings.auth.jwt_secret)
    if bits < MIN_JWT_SECRET_BITS:
        problems.append(("auth", "jwt_secret", f"the secret is too predictable (about {bits:.0f} bits, needs "
                                               f"{MIN_JWT_SECRET_BITS}): generate one with `openssl rand -hex 32`"))
    return [f"config key {section}.{key}: {why}; set {env_name(section, key)}" for section, key, why in problems]


def public_url_problem(url: str) -> str | None:
    """Why phones cannot use `url` as this server's public address, or None: WeChat opens the links of messages and
    menus on the resident's phone, over https, so neither plain http nor this machine's own address will do."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host in ("", "localhost") or host.endswith(".localhost") or (
            address is not None and (address.is_loopback or address.is_unspecified)):
        return (f"{url} is this machine's own address, which phones cannot reach: set the https:// address of the "
                "server (or its proxy) as WeChat users reach it, e.g. https://sidan.example.gov.cn")
    if parts.scheme != "https":
        return (f"{url} is plain http: WeChat opens links in messages and menus over https; set the https:// address, "
                "e.g. https://sidan.example.gov.cn")
    return None
