"""The WeChat official-account door: residents 点单, add photos and locations, follow and rate their orders.

`wire` (signatures, AES, safe XML), `dialog` (intents and reply texts, pure), `conversation` (dedup, rate limit,
the use cases), `web` (the /wechat route), `chat` (a terminal simulator that signs like WeChat).
"""
