"""The WeChat official-account door: residents 点单, add photos and locations, follow and rate their orders.

`wire` (signatures, AES, safe XML), `inbound` (a message reduced to what the bot needs), `delivery` (each message
answered once: dedup, rate limit, the resident's lock, held photos), `conversation` (the dialog: intent → use case →
reply), `new_reports` (new reports written in groups by `intake`), `dialog` (intents and reply texts, pure), `web`
(the /wechat route), `chat` (a terminal simulator that signs like WeChat).
"""
