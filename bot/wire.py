"""What travels on the wire between WeChat and us: signatures, replay window, AES (compatible and safe modes),
XML that is checked before any parser sees it, and the passive reply.

WeChat's `signature` covers the token, timestamp and nonce, never the body; only `msg_signature` covers a
ciphertext. So in safe mode a message is a ciphertext with its msg_signature or nothing, and wherever both parts
come, the ciphertext is the message and the plaintext copy beside it is ignored. A plaintext message is as good as
its query: the door remembers each query with the digest of the message it carried (`message_digest`).

Everything here is pure (no I/O); `Rejected` carries the HTTP status for the route: 403 for a bad signature, a
stale timestamp or a message its mode does not let through, 413 for an oversized body, 400 for anything malformed,
hostile or undecryptable.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

SUCCESS = "success"  # the answer that tells WeChat "received, nothing to show"

# A DTD is the only way to declare entities (billion laughs, external entities): refuse it outright, before
# expat runs. "<!" is otherwise only legal for comments and CDATA sections.
_MARKUP_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)", re.IGNORECASE)
MAX_DEPTH = 8  # WeChat's deepest message (SendPicsInfo > PicList > item > PicMd5Sum) is 4 below <xml>
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DIGITS = re.compile(r"^\d{1,20}$")
_SECONDS = re.compile(r"^\d{1,12}$")
# Fields the dialog reads as text: a repeated or nested element there is not a WeChat message.
_TEXT_FIELDS = ("Content", "MsgId", "Event", "EventKey", "MediaId", "PicUrl", "Location_X", "Location_Y", "Label",
                "Recognition")


class Rejected(Exception):
    """The request is refused before it reaches the dialog; nothing is written."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    """A verified, decrypted, parsed message and how to answer it (encrypted or not)."""

    message: BaseMessage
    fields: dict[str, Any]
    encrypted: bool


def make_crypto(token: str, aes_key: str, appid: str) -> WeChatCrypto | None:
    """The AES helper for compatible/safe modes, or None when no EncodingAESKey is configured."""
    return WeChatCrypto(token, aes_key, appid) if aes_key else None


def verify_request(token: str, args: dict[str, str], now: float, window_seconds: float) -> None:
    """WeChat's signature over (token, timestamp, nonce), and a timestamp inside the replay window."""
    signature, timestamp, nonce = args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")
    if not (signature and timestamp and nonce):
        raise Rejected(403, "missing signature, timestamp or nonce")
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        raise Rejected(403, "signature mismatch") from None
    if not _DIGITS.match(timestamp) or abs(now - int(timestamp)) > window_seconds:
        raise Rejected(403, "timestamp outside the replay window")


def checked_text(body: bytes, limit: int) -> str:
    """The body as text, refused when oversized, not UTF-8 or carrying a DTD/entity declaration."""
    if len(body) > limit:
        raise Rejected(413, f"body larger than {limit} bytes")
    if not body.strip():
        raise Rejected(400, "empty body")
    try:
        text = body.decode("utf-8")  # decoding first means a UTF-16 body cannot hide a DTD from the check below
    except UnicodeDecodeError:
        raise Rejected(400, "body is not UTF-8") from None
    if _MARKUP_DECLARATION.search(text):
        raise Rejected(400, "DTD or entity declarations are not accepted")
    return text


def parse_fields(text: str) -> dict[str, Any]:
    """The children of <xml>…</xml> as xmltodict reads them (the shape wechatpy's messages expect), entities
    disabled (a DTD was refused before) and elements nested no deeper than MAX_DEPTH."""
    try:
        document = xmltodict.parse(text, encoding="utf-8", disable_entities=True, postprocessor=_within_depth)
    except (ExpatError, ValueError) as exc:
        raise Rejected(400, f"malformed XML: {exc}") from None
    fields = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(fields, dict):
        raise Rejected(400, "the root element must be <xml> with children")
    return fields


def _within_depth(path: list[tuple[str, Any]], key: str, value: Any) -> tuple[str, Any]:
    """xmltodict's hook for each element or attribute it keeps; `path` runs from <xml> to the element itself."""
    if len(path) > MAX_DEPTH + 1:
        raise Rejected(400, f"elements nested more than {MAX_DEPTH} deep")
    return key, value


def _required_text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Rejected(400, f"missing or malformed <{name}>")
    return value.strip()


def validate_message(fields: dict[str, Any]) -> None:
    """The fields every message or event carries, with the shapes the dialog relies on."""
    _required_text(fields, "ToUserName")
    if not _OPENID.match(_required_text(fields, "FromUserName")):
        raise Rejected(400, "malformed <FromUserName>")
    if not _SECONDS.match(_required_text(fields, "CreateTime")):
        raise Rejected(400, "malformed <CreateTime>")
    for name in _TEXT_FIELDS:
        if not isinstance(fields.get(name, ""), (str, type(None))):
            raise Rejected(400, f"<{name}> must be text")
    msg_type = _required_text(fields, "MsgType").lower()
    if msg_type == "event":
        _required_text(fields, "Event")
    elif not _DIGITS.match(str(fields.get("MsgId") or "")):
        raise Rejected(400, "a message needs a numeric <MsgId>")


def open_envelope(
    body: bytes,
    args: dict[str, str],
    *,
    crypto: WeChatCrypto | None,
    max_body_bytes: int,
    mode: str,
) -> Envelope:
    """Decrypt (`encrypt_type=aes`) or read (plaintext, unless `mode` is safe) one verified request body."""
    encrypt_type = (args.get("encrypt_type") or "raw").lower()
    if encrypt_type not in ("raw", "aes"):
        raise Rejected(400, f"unknown encrypt_type {encrypt_type!r}")
    if mode == "safe" and (encrypt_type != "aes" or not args.get("msg_signature")):
        raise Rejected(403, "safe mode: only a ciphertext signed by msg_signature is accepted")
    text = checked_text(body, max_body_bytes)
    fields = parse_fields(text)
    encrypted = False
    if encrypt_type == "aes" and crypto is not None:
        text = _decrypt(fields, args, crypto, max_body_bytes)  # a plaintext copy beside the ciphertext is ignored
        fields = parse_fields(text)
        encrypted = True
    elif encrypt_type == "aes":
        if "Encrypt" in fields and "MsgType" not in fields:
            raise Rejected(400, "safe-mode message but no EncodingAESKey is configured")
        # else compatible mode without a key: the plaintext copy WeChat sends alongside is used
    elif "MsgType" not in fields:
        raise Rejected(400, "no <MsgType>: an encrypted body needs encrypt_type=aes")
    elif "Encrypt" in fields and crypto is not None:
        # WeChat sends a ciphertext only with encrypt_type=aes: this query was altered to get the plaintext read
        raise Rejected(403, "a ciphertext without encrypt_type=aes and msg_signature")
    validate_message(fields)
    try:
        message = parse_message(text)  # the text already checked and parsed once above
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Rejected(400, f"unreadable message: {exc}") from None
    return Envelope(message, fields, encrypted)


def _decrypt(fields: dict[str, Any], args: dict[str, str], crypto: WeChatCrypto, limit: int) -> str:
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt.strip():
        # a genuine encrypted query over a body without its ciphertext: nothing msg_signature can vouch for
        raise Rejected(403, "encrypt_type=aes but no <Encrypt>")
    msg_signature = args.get("msg_signature", "")
    if not msg_signature:
        raise Rejected(403, "missing msg_signature")
    try:
        inner = crypto.decrypt_message({"Encrypt": encrypt.strip()}, msg_signature, args["timestamp"], args["nonce"])
    except InvalidSignatureException:
        raise Rejected(403, "msg_signature mismatch") from None
    except Exception as exc:  # noqa: BLE001 - wrong key or corrupted ciphertext fails in many ways (padding, utf-8, appid)
        raise Rejected(400, f"cannot decrypt: {type(exc).__name__}") from None
    # The decrypted document gets the same checks as a plaintext one.
    return checked_text(inner.encode("utf-8"), limit)


def message_digest(fields: dict[str, Any]) -> str:
    """What a message is, whatever wrapped it (plaintext, ciphertext, both): the same message, the same digest."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


def render_reply(envelope: Envelope, text: str | None, crypto: WeChatCrypto | None, now: float) -> str:
    """The passive reply: a text message (encrypted when the request was), or `success` for nothing to say."""
    if not text:
        return SUCCESS
    # wechatpy wraps content in CDATA without escaping; a "]]>" from echoed user text would break the document.
    content = text.replace("]]>", "]] >")
    reply = TextReply(source=envelope.message.target, target=envelope.message.source, content=content,
                      time=int(now)).render()
    if envelope.encrypted and crypto is not None:
        return crypto.encrypt_message(reply, secrets.token_hex(8), str(int(now)))
    return reply
