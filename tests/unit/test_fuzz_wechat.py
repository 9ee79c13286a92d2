"""Fuzz of the WeChat wire parser: arbitrary XML, unicode, huge fields, wrong types and missing fields, all
correctly signed so they get past the signature check. Every body is either accepted as a message the dialog
can read, or refused with a 4xx `Rejected` — never any other exception (which the route would turn into a 500).
"""
from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings, strategies as st
from wechatpy.crypto import PrpCrypto

from bot import wire
from bot.chat import sign, to_xml
from bot.inbound import inbound_from

TOKEN = "fuzz-token"
APPID = "wx0123456789abcdef"
AES_KEY = base64.b64encode(b"sidan-fuzz-aes-key-32-bytes-long").decode().rstrip("=")
NOW = 1_790_000_000
LIMIT = 64 * 1024
FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
          "MediaId", "PicUrl", "Location_X", "Location_Y", "Label", "Recognition", "Scale", "Format", "Encrypt"]
MSG_TYPES = ["text", "image", "voice", "location", "event", "video", "link", "", "TEXT", "<b>"]

texts = st.text(max_size=200) | st.text(alphabet="路灯坏了\U0001F600\u202e\x00]]>&<", max_size=50)
values = (texts | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=True)
          | st.sampled_from(MSG_TYPES) | st.just("o_fuzz_resident") | st.just("x" * 70_000))
messages = st.dictionaries(st.sampled_from(FIELDS), values, max_size=10)
# raw documents: nested or repeated elements (wrong types for the fields), comments, CDATA, garbage
elements = st.recursive(
    texts.map(lambda t: t.replace("<", "&lt;").replace("&", "&amp;")),
    lambda children: st.tuples(st.sampled_from(FIELDS), st.lists(children, max_size=3)).map(
        lambda pair: "".join(f"<{pair[0]}>{child}</{pair[0]}>" for child in pair[1]) or f"<{pair[0]}/>"),
    max_leaves=8,
)
documents = (st.lists(elements, max_size=6).map(lambda parts: "<xml>" + "".join(parts) + "</xml>")
             | st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")))


def signed_args(extra: dict[str, str] | None = None) -> dict[str, str]:
    timestamp, nonce = str(NOW), "424242"
    args = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    wire.verify_request(TOKEN, args, NOW, 300)  # the fuzz body is what is under test, not the signature
    return {**args, **(extra or {})}


def open_or_refuse(body: bytes, args: dict[str, str], crypto=None) -> None:
    try:
        envelope = wire.open_envelope(body, args, crypto=crypto, max_body_bytes=LIMIT,
                                      mode="safe" if crypto else "plain")
    except wire.Rejected as rejected:
        assert rejected.status in (400, 403, 413), rejected.status
        assert rejected.reason
        return
    # accepted: the dialog's reduction of it must not fail either, and the reply must render
    inbound = inbound_from(envelope.message, envelope.fields)
    assert inbound.openid
    assert wire.message_digest(envelope.fields)  # what the door remembers of it under its query
    assert wire.render_reply(envelope, "收到", crypto, NOW)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_any_field_mix_is_accepted_readably_or_refused_with_4xx(fields):
    open_or_refuse(to_xml(fields).encode("utf-8"), signed_args())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_arbitrary_documents_are_accepted_readably_or_refused_with_4xx(document):
    open_or_refuse(document.encode("utf-8", "surrogatepass"), signed_args())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(messages.map(to_xml), documents))
def test_encrypted_fuzz_is_checked_after_decryption_too(inner):
    """Safe mode: a properly encrypted and msg-signed body whose plaintext is garbage."""
    crypto = wire.make_crypto(TOKEN, AES_KEY, APPID)
    encrypt = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(inner, APPID).decode()
    args = signed_args({"encrypt_type": "aes"})
    args["msg_signature"] = sign(TOKEN, args["timestamp"], args["nonce"], encrypt)
    open_or_refuse(to_xml({"ToUserName": "gh", "Encrypt": encrypt}).encode(), args, crypto)


def test_a_well_formed_text_message_is_accepted():
    """The fuzz above would pass vacuously if everything were refused."""
    fields = {"ToUserName": "gh", "FromUserName": "o_fuzz_resident", "CreateTime": NOW, "MsgType": "text",
              "Content": "楼坝村的路灯坏了]]>", "MsgId": 1234567890123}
    envelope = wire.open_envelope(to_xml(fields).encode(), signed_args(), crypto=None, max_body_bytes=LIMIT,
                                  mode="plain")
    assert inbound_from(envelope.message, envelope.fields).text == "楼坝村的路灯坏了]]>"
