"""The wire without a server: signatures, the replay window, safe XML, the three crypto modes, the reply."""
from __future__ import annotations

import base64

import pytest
import xmltodict

from bot import wire
from bot.chat import Simulator, sign, to_xml
from bot.inbound import inbound_from

TOKEN = "sidan-dev-token"
APPID = "wx0000000000000000"
AES_KEY = base64.b64encode(b"sidan-test-aes-key-32-bytes-long").decode().rstrip("=")
NOW = 1_795_000_000.0
LIMIT = 65536


def simulator(mode: str = "plain", aes_key: str = AES_KEY) -> Simulator:
    return Simulator("http://unused", TOKEN, "o_alice_resident_0000000001", mode=mode, aes_key=aes_key, appid=APPID,
                     now=lambda: NOW)


def crypto():
    return wire.make_crypto(TOKEN, AES_KEY, APPID)


def test_a_signed_fresh_request_passes():
    wire.verify_request(TOKEN, {"signature": sign(TOKEN, "1795000000", "42"), "timestamp": "1795000000",
                                "nonce": "42"}, NOW, 300)


@pytest.mark.parametrize("args, why", [
    ({"signature": sign("other", "1795000000", "42"), "timestamp": "1795000000", "nonce": "42"}, "signature"),
    ({"signature": sign(TOKEN, "1794999699", "42"), "timestamp": "1794999699", "nonce": "42"}, "replay"),
    ({"signature": sign(TOKEN, "1795000301", "42"), "timestamp": "1795000301", "nonce": "42"}, "replay"),
    ({"signature": sign(TOKEN, "17950x0000", "42"), "timestamp": "17950x0000", "nonce": "42"}, "replay"),
    ({"timestamp": "1795000000", "nonce": "42"}, "missing"),
])
def test_forged_stale_or_missing_signatures_are_403(args, why):
    with pytest.raises(wire.Rejected) as refused:
        wire.verify_request(TOKEN, args, NOW, 300)
    assert refused.value.status == 403


@pytest.mark.parametrize("body, status", [
    (b"<xml>" + b"a" * LIMIT + b"</xml>", 413),
    (b"   ", 400),
    ("<xml><a>é</a></xml>".encode("latin-1"), 400),
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><xml/>'.encode("utf-16"), 400),  # no hiding in UTF-16
    (b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><a>&a;</a></xml>', 400),
    (b"<!doctype xml><xml/>", 400),
    (b'<xml><!ENTITY a "b"></xml>', 400),
])
def test_bodies_refused_before_parsing(body, status):
    with pytest.raises(wire.Rejected) as refused:
        wire.checked_text(body, LIMIT)
    assert refused.value.status == status


def test_cdata_and_comments_are_fine():
    text = wire.checked_text(b"<xml><!-- hi --><Content><![CDATA[a<b]]></Content></xml>", LIMIT)
    assert wire.parse_fields(text) == {"Content": "a<b"}


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_each_mode_opens_to_the_same_message_and_the_reply_reads_back(mode):
    sim = simulator(mode)
    params, body = sim.envelope(sim.text_message("路灯坏了]]><x>"))
    envelope = wire.open_envelope(body.encode(), params, crypto=crypto(), max_body_bytes=LIMIT, mode="compatible")
    assert envelope.encrypted == (mode != "plain")
    assert envelope.message.type == "text" and envelope.message.content == "路灯坏了]]><x>"
    inbound = inbound_from(envelope.message, envelope.fields)
    assert inbound.key.startswith("msg:o_alice_resident_0000000001:") and inbound.text == "路灯坏了]]><x>"
    reply = wire.render_reply(envelope, "收到:路灯坏了]]><x>", crypto(), NOW)
    assert ("<Encrypt>" in reply) == (mode != "plain")
    assert sim.read_reply(reply) == "收到:路灯坏了]] ><x>"  # a CDATA terminator cannot break the reply


def test_nothing_to_say_is_success_in_every_mode():
    sim = simulator("safe")
    params, body = sim.envelope(sim.event_message("unsubscribe"))
    envelope = wire.open_envelope(body.encode(), params, crypto=crypto(), max_body_bytes=LIMIT, mode="safe")
    assert wire.render_reply(envelope, None, crypto(), NOW) == "success"


def _refusal(body: str | bytes, params: dict, with_crypto=True, mode="compatible") -> int:
    data = body.encode() if isinstance(body, str) else body
    if not with_crypto and mode != "plain":
        mode = "plain"  # compatible and safe modes need the key (the configuration refuses them without one)
    with pytest.raises(wire.Rejected) as refused:
        wire.open_envelope(data, params, crypto=crypto() if with_crypto else None, max_body_bytes=LIMIT, mode=mode)
    return refused.value.status


def test_wrong_key_corruption_and_forged_msg_signature():
    intruder = simulator("safe", aes_key=base64.b64encode(b"another-aes-key-of-32-bytes-long").decode().rstrip("="))
    params, body = intruder.envelope(intruder.text_message("x"))
    assert _refusal(body, params) == 400
    sim = simulator("safe")
    params, body = sim.envelope(sim.text_message("路灯坏了"))
    encrypt = xmltodict.parse(body)["xml"]["Encrypt"]
    for garbage in ("AAAA" + encrypt[4:], encrypt[:-8], "not base64 at all!", "QUFB"):
        signed = {**params, "msg_signature": sign(TOKEN, params["timestamp"], params["nonce"], garbage)}
        assert _refusal(to_xml({"ToUserName": "gh", "Encrypt": garbage}), signed) == 400, garbage
    assert _refusal(body, {**params, "msg_signature": "0" * 40}) == 403
    assert _refusal(body, {**params, "msg_signature": ""}) == 403
    assert _refusal(body, params, with_crypto=False) == 400  # safe mode, no key configured


@pytest.mark.parametrize("fields, why", [
    ({"ToUserName": "gh", "CreateTime": 1, "MsgType": "text", "Content": "x", "MsgId": 1}, "no sender"),
    ({"ToUserName": "gh", "FromUserName": "o<script>", "CreateTime": 1, "MsgType": "text", "MsgId": 1}, "sender"),
    ({"ToUserName": "gh", "FromUserName": "o1", "CreateTime": "soon", "MsgType": "text", "MsgId": 1}, "time"),
    ({"ToUserName": "gh", "FromUserName": "o1", "CreateTime": 1, "MsgType": "text", "Content": "x"}, "no MsgId"),
    ({"ToUserName": "gh", "FromUserName": "o1", "CreateTime": 1, "MsgType": "event"}, "no Event"),
])
def test_messages_missing_what_wechat_always_sends_are_400(fields, why):
    timestamp, nonce = str(int(NOW)), "1"
    params = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    assert _refusal(to_xml(fields), params) == 400, why


def test_unknown_encrypt_type_and_an_encrypted_body_sent_as_plaintext_are_400():
    sim = simulator("safe")
    params, body = sim.envelope(sim.text_message("x"))
    assert _refusal(body, {**params, "encrypt_type": "rot13"}) == 400
    assert _refusal(body, {**params, "encrypt_type": ""}) == 400


def test_message_kinds_become_inbound_messages():
    sim = simulator()
    location = inbound_from(*_opened(sim, sim.location_message(28.64, 104.405, "楼坝村")))
    assert (location.kind, location.latitude, location.longitude, location.label) == ("location", 28.64, 104.405,
                                                                                        "楼坝村")
    image = inbound_from(*_opened(sim, sim.image_message("m1")))
    assert (image.kind, image.media_id) == ("image", "m1") and image.pic_url.endswith("m1.jpg")
    voice = inbound_from(*_opened(sim, sim.voice_message(None)))
    assert (voice.kind, voice.text) == ("voice", None)
    click = inbound_from(*_opened(sim, sim.event_message("CLICK", "MY_ORDERS")))
    assert (click.kind, click.event, click.event_key) == ("event", "click", "MY_ORDERS")
    other_click = inbound_from(*_opened(sim, sim.event_message("CLICK", "RATE")))
    assert click.key != other_click.key  # two menu items in the same second are two events
    passive = inbound_from(*_opened(sim, {**sim.event_message("LOCATION"), "Latitude": 1, "Longitude": 2}))
    assert passive.key is None  # nothing to answer, nothing to record


def _opened(sim: Simulator, fields: dict):
    params, body = sim.envelope(fields)
    envelope = wire.open_envelope(body.encode(), params, crypto=None, max_body_bytes=LIMIT, mode="plain")
    return envelope.message, envelope.fields


def test_deep_nesting_and_repeated_fields_are_400_not_a_crash():
    timestamp, nonce = str(int(NOW)), "1"
    params = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    base = "<ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>" \
           "<MsgType>text</MsgType><MsgId>1</MsgId>"
    deep = "<xml>" + base + "<Content>" + "<a>" * 5000 + "x" + "</a>" * 5000 + "</Content></xml>"
    assert _refusal(deep, params) == 400
    assert _refusal("<xml>" + base + "<Content>a</Content><Content>b</Content></xml>", params) == 400


# Every kind of message WeChat sends; the deepest (pic_sysphoto's SendPicsInfo) is 4 below <xml>.
HEAD = "<ToUserName><![CDATA[gh_sidan]]></ToUserName><FromUserName><![CDATA[o_alice]]></FromUserName>" \
       "<CreateTime>1795000000</CreateTime>"
WECHAT_BODIES = [
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[  路灯坏了 a<b ]]></Content><MsgId>1234567890123456</MsgId>",
    "<MsgType>voice</MsgType><MediaId>m1</MediaId><Format>amr</Format><Recognition>路灯坏了</Recognition><MsgId>2</MsgId>",
    "<MsgType>image</MsgType><PicUrl>http://example/p.jpg</PicUrl><MediaId>m2</MediaId><MsgId>3</MsgId>",
    "<MsgType>location</MsgType><Location_X>29.1</Location_X><Location_Y>107.2</Location_Y><Scale>15</Scale>"
    "<Label><![CDATA[楼坝村]]></Label><MsgId>4</MsgId>",
    "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>REPORT</EventKey>",
    "<MsgType>event</MsgType><Event>subscribe</Event><EventKey><![CDATA[qrscene_42]]></EventKey><Ticket>t</Ticket>",
    "<MsgType>event</MsgType><Event>subscribe</Event><EventKey><![CDATA[scanbarcode|x]]></EventKey>",
    "<MsgType>event</MsgType><Event>subscribe</Event><EventKey></EventKey>",
    "<MsgType>event</MsgType><Event>SCAN</Event><EventKey>42</EventKey><Ticket>t</Ticket>",
    "<MsgType>event</MsgType><Event>scancode_push</Event><EventKey>k</EventKey>"
    "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>",
    "<MsgType>event</MsgType><Event>pic_sysphoto</Event><EventKey>k</EventKey><SendPicsInfo><Count>2</Count>"
    "<PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo>",
    "<MsgType>event</MsgType><Event>location_select</Event><EventKey>k</EventKey><SendLocationInfo>"
    "<Location_X>29</Location_X><Location_Y>107</Location_Y><Label/><Poiname></Poiname></SendLocationInfo>",
    "<MsgType>event</MsgType><Event>LOCATION</Event><Latitude>29.1</Latitude><Longitude>107.2</Longitude>"
    "<Precision>65</Precision>",
    "<MsgType>shortvideo</MsgType><MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>",
    "<MsgType>something_new</MsgType><MsgId>6</MsgId><Extra a=\"1\">x</Extra>",
]


@pytest.mark.parametrize("body", WECHAT_BODIES)
def test_the_checks_refuse_no_kind_of_wechat_message(body):
    envelope = wire.open_envelope(f"<xml>{HEAD}{body}</xml>".encode(), {}, crypto=None, max_body_bytes=LIMIT,
                                  mode="plain")
    assert envelope.message.source == "o_alice"
    assert inbound_from(envelope.message, envelope.fields).openid == "o_alice"


def test_elements_nested_deeper_than_any_wechat_message_are_refused():
    nested = "<a>" * wire.MAX_DEPTH + "x" + "</a>" * wire.MAX_DEPTH
    assert wire.parse_fields(f"<xml>{nested}</xml>")  # as deep as allowed
    with pytest.raises(wire.Rejected) as refused:
        wire.parse_fields(f"<xml><b>{nested}</b></xml>")
    assert refused.value.status == 400


# ------------------------------------------------------------------------------------------ the account's mode
def _opened_in(mode: str, body: str, params: dict) -> wire.Envelope:
    return wire.open_envelope(body.encode(), params, crypto=crypto(), max_body_bytes=LIMIT, mode=mode)


def test_safe_mode_takes_only_a_ciphertext_signed_by_msg_signature():
    plain = simulator("plain")
    params, body = plain.envelope(plain.text_message("取消 YK20261124-0001"))
    assert _refusal(body, params, mode="safe") == 403
    assert _refusal(body, {**params, "encrypt_type": "aes"}, mode="safe") == 403
    safe = simulator("safe")
    signed, encrypted = safe.envelope(safe.text_message("路灯坏了"))
    assert _refusal(body, signed, mode="safe") == 403  # a genuine query, a plaintext body: nothing to check it by
    without = {key: value for key, value in signed.items() if key not in ("encrypt_type", "msg_signature")}
    assert _refusal(encrypted, without, mode="safe") == 403
    assert _refusal(encrypted, {**signed, "msg_signature": ""}, mode="safe") == 403
    assert _refusal(encrypted, {**signed, "encrypt_type": "raw"}, mode="safe") == 403
    assert _opened_in("safe", encrypted, signed).message.content == "路灯坏了"


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_the_ciphertext_wins_over_a_plaintext_copy_beside_it(mode):
    sim = simulator("compatible")
    params, body = sim.envelope(sim.text_message("路灯坏了"))
    forged = body.replace("<Content><![CDATA[路灯坏了]]>", "<Content><![CDATA[取消 YK20261124-0001]]>")
    assert forged != body
    envelope = _opened_in(mode, forged, params)
    assert envelope.encrypted and envelope.message.content == "路灯坏了"
    # the same body with encrypt_type and msg_signature dropped: the query was altered, not read as plaintext
    stripped = {key: value for key, value in params.items() if key not in ("encrypt_type", "msg_signature")}
    assert _refusal(forged, stripped, mode=mode) == 403


def test_without_a_key_the_plaintext_copy_of_a_compatible_message_is_read():
    sim = simulator("compatible")
    params, body = sim.envelope(sim.text_message("路灯坏了"))
    envelope = wire.open_envelope(body.encode(), params, crypto=None, max_body_bytes=LIMIT, mode="plain")
    assert not envelope.encrypted and envelope.message.content == "路灯坏了"


def test_the_message_digest_tells_messages_apart_not_their_wrapping():
    def digest(sim: Simulator, fields: dict) -> str:
        params, body = sim.envelope(fields)
        return wire.message_digest(_opened_in("compatible", body, params).fields)

    plain, safe = simulator("plain"), simulator("safe")
    fields = plain.text_message("路灯坏了")
    assert digest(plain, fields) == digest(safe, fields) == digest(simulator("compatible"), fields)
    for changed in ({**fields, "Content": "路灯好了"}, {**fields, "FromUserName": "o_bob"},
                    {**fields, "MsgId": fields["MsgId"] + 1}):
        assert digest(plain, changed) != digest(plain, fields)
