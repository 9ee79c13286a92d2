"""The /wechat route: GET answers WeChat's server URL verification, POST takes every message and event.

Refusals happen before anything is written: 403 for a forged signature or a stale timestamp, for what the account's
message mode (wechat.encoding_mode) does not let through (plaintext in safe mode) and for a signed query seen before
with another message; 413 for an oversized body, 400 for malformed, hostile (DTD/entities) or undecryptable XML.
Everything that passes gets a passive reply inside WeChat's 5 seconds: a text, or `success`.
"""
from __future__ import annotations

import logging

from sanic import Request, Sanic
from sanic.exceptions import BadRequest, Forbidden, PayloadTooLarge
from sanic.response import HTTPResponse, text

from bot import wire
from bot.conversation import Conversation
from bot.delivery import Query, ReplayedQuery
from bot.inbound import inbound_from

log = logging.getLogger("sidan.bot")

QUERY_KEYS = ("signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr")
_REFUSALS = {400: BadRequest, 403: Forbidden, 413: PayloadTooLarge}


def _query(request: Request) -> dict[str, str]:
    return {key: request.args.get(key, "") for key in QUERY_KEYS}


def _refuse(request: Request, rejected: wire.Rejected) -> None:
    log.warning("refused WeChat request: %s", rejected.reason)
    raise _REFUSALS.get(rejected.status, BadRequest)(rejected.reason)


def register(app: Sanic) -> None:
    @app.before_server_start
    async def start_bot(app: Sanic) -> None:
        settings = app.ctx.settings
        app.ctx.wechat_crypto = wire.make_crypto(settings.wechat.token, settings.wechat.aes_key,
                                                 settings.wechat.appid)
        app.ctx.bot = Conversation(settings, app.ctx.orders, app.ctx.store, app.ctx.clock)
        log.info("WeChat messages accepted in %s mode", settings.wechat.encoding)

    @app.get("/wechat", name="wechat_verify")
    async def wechat_verify(request: Request) -> HTTPResponse:
        settings, args = request.app.ctx.settings, _query(request)
        try:
            wire.verify_request(settings.wechat.token, args, request.app.ctx.clock.now().timestamp(),
                                settings.bot.replay_window_seconds)
        except wire.Rejected as rejected:
            _refuse(request, rejected)
        return text(args["echostr"])

    @app.post("/wechat", name="wechat_message")
    async def wechat_message(request: Request) -> HTTPResponse:
        ctx = request.app.ctx
        settings, args = ctx.settings, _query(request)
        now = ctx.clock.now().timestamp()
        try:
            wire.verify_request(settings.wechat.token, args, now, settings.bot.replay_window_seconds)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > settings.bot.max_body_bytes:
                raise wire.Rejected(413, "declared body larger than the limit")
            envelope = wire.open_envelope(request.body or b"", args, crypto=ctx.wechat_crypto,
                                          max_body_bytes=settings.bot.max_body_bytes, mode=settings.wechat.encoding)
        except wire.Rejected as rejected:
            _refuse(request, rejected)
        query = None
        if settings.wechat.encoding != "safe":  # in safe mode msg_signature binds the message to its query already
            query = Query(args["signature"], wire.message_digest(envelope.fields),
                          ttl=int(args["timestamp"]) + settings.bot.replay_window_seconds - now + 1)
        try:
            reply = await ctx.bot.reply_to(inbound_from(envelope.message, envelope.fields), query)
        except ReplayedQuery as replayed:
            _refuse(request, wire.Rejected(403, str(replayed)))
        body = wire.render_reply(envelope, reply, ctx.wechat_crypto, now)
        if body == wire.SUCCESS:
            return text(body)
        return text(body, content_type="application/xml; charset=utf-8")
