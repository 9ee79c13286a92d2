"""The outgoing WeChat client against the local fake WeChat server (a real HTTP server on loopback)."""
from __future__ import annotations

import asyncio

import pytest

from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable
from orders.store import MemoryStore
from tests.support import make_settings


@pytest.fixture
def client_factory(fake_wechat, tmp_path):
    settings = make_settings(f"sqlite://{tmp_path}/x.sqlite3").with_overrides(wechat={"api_base": fake_wechat.base_url})
    def make(store=None):
        return WeChatClient(settings, store or MemoryStore())

    return make


async def test_token_is_fetched_once_and_shared_through_the_store(fake_wechat, client_factory):
    store = MemoryStore()
    first, second = client_factory(store), client_factory(store)
    await first.send_text("oResident0001", "您好,工单已受理")
    await second.send_text("oResident0001", "第二条")
    assert fake_wechat.token_issued == 1
    bodies = [r.body for r in fake_wechat.messages_to("oResident0001")]
    assert bodies == [
        {"touser": "oResident0001", "msgtype": "text", "text": {"content": "您好,工单已受理"}},
        {"touser": "oResident0001", "msgtype": "text", "text": {"content": "第二条"}},
    ]
    await first.close()
    await second.close()


async def test_concurrent_callers_refresh_the_token_once(fake_wechat, client_factory):
    store = MemoryStore()
    clients = [client_factory(store) for _ in range(5)]
    await asyncio.gather(*(c.send_text(f"o{i}", "hi") for i, c in enumerate(clients)))
    assert fake_wechat.token_issued == 1
    assert len(fake_wechat.messages()) == 5
    for client in clients:
        await client.close()


async def test_expired_token_answer_refreshes_once_then_succeeds(fake_wechat, client_factory):
    client = client_factory()
    await client.send_text("o1", "first")
    fake_wechat.expire_token_next(1)
    await client.send_text("o1", "after expiry")
    assert fake_wechat.token_issued == 2
    assert [r.body["text"]["content"] for r in fake_wechat.messages_to("o1")] == ["first", "after expiry"]
    await client.close()


async def test_a_token_error_twice_in_a_row_is_reported_not_looped(fake_wechat, client_factory):
    client = client_factory()
    await client.access_token()
    fake_wechat.expire_token_next(2)
    with pytest.raises(WeChatAPIError) as error:
        await client.send_text("o1", "x")
    assert error.value.errcode == 42001
    assert fake_wechat.token_issued == 2
    await client.close()


async def test_server_errors_and_a_down_server_raise_unavailable(fake_wechat, client_factory):
    client = client_factory()
    await client.access_token()
    fake_wechat.fail_next(1, status=502)
    with pytest.raises(WeChatUnavailable):
        await client.send_text("o1", "x")
    fake_wechat.stop()
    with pytest.raises(WeChatUnavailable):
        await client.send_text("o1", "x")
    fake_wechat.start()
    await client.send_text("o1", "back")
    assert [r.body["text"]["content"] for r in fake_wechat.messages_to("o1")] == ["back"]
    await client.close()


async def test_template_and_subscribe_shapes(fake_wechat, client_factory):
    client = client_factory()
    await client.send_template("o1", "TPL", {"first": "工单已办结", "keyword1": "YK20261124-0001"}, url="https://x/y")
    await client.send_subscribe("o2", "SUB", {"thing1": "请评价"}, page="pages/rate?n=1")
    template, subscribe = fake_wechat.messages()
    assert template.path == "/cgi-bin/message/template/send"
    assert template.body["data"]["keyword1"] == {"value": "YK20261124-0001"}
    assert subscribe.path == "/cgi-bin/message/subscribe/send"
    assert subscribe.body == {"touser": "o2", "template_id": "SUB", "data": {"thing1": {"value": "请评价"}},
                              "page": "pages/rate?n=1"}
    # official account and mini-program have separate tokens
    assert fake_wechat.token_issued == 2
    await client.close()


async def test_jscode2session(fake_wechat, client_factory):
    client = client_factory()
    answer = await client.jscode2session("code-demo-admin")
    assert answer["openid"] == "demo-admin"
    with pytest.raises(WeChatAPIError) as error:
        await client.jscode2session("garbage")
    assert error.value.errcode == 40029
    await client.close()


async def test_a_temporary_medium_comes_back_as_bytes_with_its_type_and_a_forgotten_one_as_40007(fake_wechat,
                                                                                                 client_factory):
    client = client_factory()
    pic_url = fake_wechat.add_media("m-voice", b"#!AMR\n\x00\x01", "audio/amr")
    assert await client.media_get("m-voice") == (b"#!AMR\n\x00\x01", "audio/amr")
    fake_wechat.expire_token_next(1)  # a token WeChat refuses is refreshed once, the medium asked for again
    assert (await client.media_get("m-voice"))[0] == b"#!AMR\n\x00\x01"
    assert fake_wechat.token_issued == 2
    fake_wechat.forget("m-voice")
    with pytest.raises(WeChatAPIError) as gone:
        await client.media_get("m-voice")
    assert gone.value.errcode == 40007
    photo_url = fake_wechat.add_media("m-photo", b"\xff\xd8\xff-jpeg")
    assert await client.download(photo_url) == (b"\xff\xd8\xff-jpeg", "image/jpeg")  # the PicUrl: no token
    with pytest.raises(WeChatAPIError):
        await client.download(pic_url)  # a voice has no picture
    fake_wechat.stop()
    with pytest.raises(WeChatUnavailable):
        await client.media_get("m-photo")
    await client.close()
