"""`sidan chat` against the server on loopback: a person's terminal conversation, signed as WeChat signs."""
from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import sys
from urllib.parse import urlsplit

import pytest

from api.app import create_app
from api.demo.township import load_demo_data
from bot import chat
from orders import models
from tests.support import REPO, FakeClassifier, running_server

AES_KEY = base64.b64encode(b"sidan-test-aes-key-32-bytes-long").decode().rstrip("=")
NUMBER = re.compile(r"工单号 (YK\d{8}-\d{4})")


def _app(settings, store, **wechat):
    overrides = {"app": {"run_background_tasks": False}}
    if wechat:
        overrides["wechat"] = wechat
    return create_app(settings.with_overrides(**overrides), classifier=FakeClassifier(), store=store)


async def test_sidan_chat_in_a_terminal(settings, store):
    script = "\n".join([
        "你好",
        "楼坝村村口的路灯坏了一个星期",
        "/img",
        "/loc 28.640 104.405 楼坝村村口",
        "/menu MY_ORDERS",
        "/loc somewhere",
        "/bogus",
        "/quit",
        "this line is never sent",
    ]) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDAN_")}
    async with running_server(_app(settings, store)) as base:
        await load_demo_data()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "chat", "--url", base, "--openid", "o_terminal_resident_000001",
            cwd=REPO, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(script.encode()), timeout=60)
        output = out.decode()
        assert process.returncode == 0, err.decode()
        number = NUMBER.search(output).group(1)
        assert "公众号:您好!有什么需要反映的事情" in output
        assert "承办部门:村镇建设办" in output
        assert f"公众号:照片已补充到工单 {number}(共 1 张)。" in output
        order = await models.Order.get(number=number)
        [pic_url] = await models.Media.filter(order_id=order.id).values_list("pic_url", flat=True)
        assert urlsplit(pic_url).hostname == "127.0.0.1"  # a simulated photo points at no server on the internet
        assert f"公众号:位置已补充到工单 {number}(楼坝村村口)。所属网格:楼坝村一网格。" in output
        assert "您的工单(共 1 件,显示最近 1 件)" in output
        assert "用法:/loc 纬度 经度" in output and "不认识的命令 /bogus" in output
        assert output.rstrip().endswith("再见!")
        order = await models.Order.get(number=number).prefetch_related("grid", "resident")
        assert order.resident.openid == "o_terminal_resident_000001" and len(order.photos) == 1
        assert order.grid.code == "XJB-01"
        assert await models.Order.all().count() == 1  # "this line is never sent"


async def test_chat_in_safe_mode_and_a_refused_token(settings, store, monkeypatch):
    monkeypatch.setenv("SIDAN_WECHAT_AES_KEY", AES_KEY)
    async with running_server(_app(settings, store, aes_key=AES_KEY)) as base:
        await load_demo_data()
        out = io.StringIO()
        lines = io.StringIO("新滩村的自来水停了两天\n/voice\n/menu RATE\n")
        code = await asyncio.to_thread(chat.main, ["--url", base, "--openid", "o_safe_resident_0000000001"],
                                       lines, out)
        assert code == 0
        text = out.getvalue()
        assert "(safe 模式)" in text and NUMBER.search(text)
        assert "没能识别出文字" in text and "没有待评价的工单" in text
        refused = io.StringIO()
        await asyncio.to_thread(chat.main, ["--url", base, "--token", "not-the-token"], io.StringIO("你好\n"), refused)
        assert "[服务器拒绝] HTTP 403" in refused.getvalue()
        assert await models.Order.all().count() == 1


def test_chat_says_clearly_when_the_server_is_not_there(monkeypatch):
    monkeypatch.delenv("SIDAN_WECHAT_AES_KEY", raising=False)
    out = io.StringIO()
    assert chat.main(["--url", "http://127.0.0.1:1"], io.StringIO("你好\n"), out) == 0
    assert "[无法连接 http://127.0.0.1:1]" in out.getvalue()
    assert chat.main(["--mode", "safe"], io.StringIO(""), io.StringIO()) == 2  # safe mode needs the AES key


# what `sidan chat --mode` gets from a server in each mode: an order, or the refusal's status
AGAINST = {
    "plain": {"plain": None, "compatible": None, "safe": "HTTP 400"},  # no key on the server: nothing to decrypt
    "compatible": {"plain": None, "compatible": None, "safe": None},
    "safe": {"plain": "HTTP 403", "compatible": None, "safe": None},
}


@pytest.mark.parametrize("server_mode", list(AGAINST))
async def test_chat_in_each_mode_against_a_server_in_each_mode(settings, store, monkeypatch, server_mode):
    monkeypatch.setenv("SIDAN_WECHAT_AES_KEY", AES_KEY)  # the simulator's own configuration: it holds the key
    monkeypatch.setenv("SIDAN_WECHAT_ENCODING_MODE", "compatible")
    server_key = "" if server_mode == "plain" else AES_KEY
    async with running_server(_app(settings, store, aes_key=server_key, encoding_mode=server_mode)) as base:
        await load_demo_data()
        for n, chat_mode in enumerate(chat.MODES):
            out = io.StringIO()
            openid = f"o_{chat_mode}_resident_00000000{n}"
            code = await asyncio.to_thread(chat.main, ["--url", base, "--openid", openid, "--mode", chat_mode],
                                           io.StringIO("楼坝村的路灯坏了好几天\n"), out)
            text = out.getvalue()
            assert code == 0 and f"({chat_mode} 模式)" in text
            refused = AGAINST[server_mode][chat_mode]
            if refused:
                assert f"[服务器拒绝] {refused}" in text, (server_mode, chat_mode, text)
                assert not await models.Order.filter(resident__openid=openid).exists()
            else:
                assert NUMBER.search(text), (server_mode, chat_mode, text)
                assert await models.Order.filter(resident__openid=openid).count() == 1


def test_chat_talks_in_the_configured_mode_by_default(monkeypatch):
    monkeypatch.setenv("SIDAN_WECHAT_AES_KEY", AES_KEY)
    monkeypatch.setenv("SIDAN_WECHAT_ENCODING_MODE", "compatible")
    out = io.StringIO()
    assert chat.main(["--url", "http://127.0.0.1:1"], io.StringIO(""), out) == 0
    assert "(compatible 模式)" in out.getvalue()
    monkeypatch.delenv("SIDAN_WECHAT_ENCODING_MODE")
    out = io.StringIO()
    assert chat.main(["--url", "http://127.0.0.1:1"], io.StringIO(""), out) == 0
    assert "(safe 模式)" in out.getvalue()  # a key and no mode: safe, as the server
