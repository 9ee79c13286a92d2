"""Going live from nothing, as README's Production section says and a township's IT admin does it, on both backends:
an empty database, `sidan migrate`, the township's own file (新安镇, not the demo), the first admin and the staff
invited in a terminal, `sidan serve` under SIDAN_ENV=production, the official account checked and its menu pushed,
the staff binding their WeChat (the mini-program's /auth/bind, or "绑定 <邀请码>" sent to the official account),
`sidan check` until it exits 0 — then the whole loop through the fake WeChat on loopback: a resident reports with a
photo and a location, the order lands in the grid whose polygon holds the location, the grid worker dispatches, the
department accepts and resolves with a photo it uploaded, the survey reaches the resident, the resident rates. The
resident's photo is still served to the handling staff after WeChat has forgotten it, and no demo account exists."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from bot.chat import Simulator
from orders import db, models
from tests.e2e.go_live_harness import (
    PUBLIC, Township, first_message, report_number, serving, township_shell,
)
from tests.support import photo_bytes, run_sidan

XINAN = "tests/data/xinan-township.toml"
RESIDENT = "o_xinan_resident_000000001"
INSIDE_XA_02 = (30.105, 103.215)  # lat, lng: inside 东岭村二组's rectangle [103.210–103.220] × [30.100–30.110]
# The model sends it to jiaoyu, which 新安镇 has deactivated: the grid worker dispatches it.
REQUEST = "孩子明年要上小学了,不知道去哪里报名入学"


@pytest.fixture
async def township(backend, store, tmp_path, quick_model, fake_wechat):
    async with township_shell(backend, tmp_path, quick_model, fake_wechat) as shell:
        yield shell


def sidan(township: Township, *args: str):
    result = run_sidan(township.database_url, *args, **township.env)
    assert result.returncode in (0, 1), f"sidan {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def invite(township: Township, name: str) -> str:
    invited = sidan(township, "staff", "invite", name, "--json")
    assert invited.returncode == 0, invited.stderr
    return json.loads(invited.stdout)["code"]


async def bind_miniapp(api: httpx.AsyncClient, township: Township, code: str, openid: str) -> dict:
    """The invited member opens the mini-program's binding page: wx.login's code and the invitation."""
    township.wechat.codes[f"wx-{openid}"] = openid
    bound = await api.post("/api/v1/auth/bind", json={"code": f"wx-{openid}", "invitation": code})
    assert bound.status_code == 200, bound.text
    return bound.json()


async def test_a_township_goes_live_from_an_empty_database_and_serves_a_resident_end_to_end(township):
    # ------------------------------------------------------------------ the terminal: data, admin, invitations
    assert sidan(township, "migrate").stdout.startswith("applied: ")
    applied = sidan(township, "township", "apply", XINAN)
    assert applied.returncode == 0 and applied.stdout.startswith("新安镇(") and "尚未绑定微信的人员 4 名" in applied.stdout
    admin = json.loads(sidan(township, "admin", "create", "--name", "信息员小周", "--json").stdout)
    invitations = {name: invite(township, name) for name in ("钱网格", "孙网格", "吴主任", "陈民政")}
    qian_miniapp = invite(township, "钱网格")  # the grid worker binds both: the account (notices), the mini-program
    not_yet = sidan(township, "check")
    assert not_yet.returncode == 1
    assert any(line.startswith("网格 XA-02 的网格员 钱网格 还没绑定微信") for line in not_yet.stdout.splitlines())

    # ------------------------------------------------------------------ the server and the official account
    async with serving(township) as (base, api):
        township.wechat.templates = township.templates  # added in the account's 模板消息 (docs/wechat-setup.md)
        township.wechat.subscribe_templates = township.subscribe_templates
        assert sidan(township, "wechat", "check").returncode == 0
        assert sidan(township, "wechat", "menu").returncode == 0
        [menu] = township.wechat.messages("/cgi-bin/menu/create")
        assert f"{PUBLIC}/m/" in json.dumps(menu.body)

        def wechat_user(openid: str) -> Simulator:
            return Simulator(base, township.env["SIDAN_WECHAT_TOKEN"], openid, mode="safe",
                             aes_key=township.env["SIDAN_WECHAT_AES_KEY"], appid=township.env["SIDAN_WECHAT_APPID"])

        async def say(openid: str, fields_of) -> str | None:
            user = wechat_user(openid)
            return await user.send_async(fields_of(user), api)

        tokens = {"admin": await bind_miniapp(api, township, admin["code"], "oXiaoZhouMini"),
                  "qian": await bind_miniapp(api, township, qian_miniapp, "oQianMini"),
                  "wu": await bind_miniapp(api, township, invitations["吴主任"], "oWuMini"),
                  "chen": await bind_miniapp(api, township, invitations["陈民政"], "oChenMini")}
        assert tokens["admin"]["role"] == "admin" and tokens["chen"]["profile"]["department"]["code"] == "minzheng"
        for name, openid in (("钱网格", "oQianOA"), ("孙网格", "oSunOA")):  # "绑定 <邀请码>" to the account
            reply = await say(openid, lambda user, code=invitations[name]: user.text_message(f"绑定 {code}"))
            assert reply.startswith(f"绑定成功,网格员 {name}"), reply
        ready = sidan(township, "check")
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert "可以服务群众" in ready.stdout.splitlines()
        again = sidan(township, "township", "apply", XINAN)  # the file applied again keeps everyone's binding
        assert "没有变化" in again.stdout and "尚未绑定微信" not in again.stdout, again.stdout

        def headers(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[who]['access_token']}"}

        # ------------------------------------------------------------------ 点单: photo, location, words
        evidence = photo_bytes((30, 120, 200))
        pic_url = township.wechat.add_media("xa-photo-1", evidence)
        assert await say(RESIDENT, lambda user: {**user.image_message("xa-photo-1"), "PicUrl": pic_url})
        assert await say(RESIDENT, lambda user: user.location_message(*INSIDE_XA_02, "东岭村二组村委会旁"))
        reply = await say(RESIDENT, lambda user: user.text_message(REQUEST))
        number = report_number(reply)
        assert number.startswith("XA")

        # ------------------------------------------------------------------ 派单: the grid by its polygon
        queue = (await api.get("/api/v1/dispatch-queue", headers=headers("qian"))).json()["items"]
        assert [(item["number"], item["grid"]["code"], item["state"]) for item in queue] == [(number, "XA-02",
                                                                                             "submitted")]
        notice = await first_message(township.wechat, "oQianOA")  # the grid worker heard through the account
        assert notice.body["template_id"] == township.env["SIDAN_WECHAT_STAFF_TEMPLATE_ID"]
        dispatched = await api.post(f"/api/v1/orders/{number}/dispatch", headers=headers("qian"),
                                    json={"department": "minzheng", "reason": "本镇未设教育办,由社会事务办承办"})
        assert dispatched.status_code == 200, dispatched.text

        # ------------------------------------------------------------------ 接单 · 办结 with an uploaded photo
        accepted = await api.post(f"/api/v1/orders/{number}/accept", headers=headers("chen"))
        assert accepted.status_code == 200, accepted.text
        scene = photo_bytes((10, 160, 60), fmt="PNG")
        uploaded = await api.post("/api/v1/media", headers=headers("chen"),
                                  files={"file": ("notice.png", scene, "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        resolved = await api.post(f"/api/v1/orders/{number}/resolve", headers=headers("chen"), json={
            "result": "已联系中心小学:明年 6 月在村委会登记,带户口本和出生证明", "photos": [uploaded.json()["id"]]})
        assert resolved.status_code == 200 and resolved.json()["state"] == "resolved", resolved.text

        # ------------------------------------------------------------------ 验单: the survey, the rating
        survey = await first_message(township.wechat, RESIDENT, containing="请给这次办理打个分")
        assert number in json.dumps(survey.body, ensure_ascii=False)
        thanks = await say(RESIDENT, lambda user: user.text_message("5 很满意,谢谢"))
        assert "评价" in thanks, thanks

        # ------------------------------------------------------------------ the evidence outlives WeChat
        detail = await wait_for_stored_photos(api, number, headers("chen"), count=2)
        assert [r.query["media_id"] for r in township.wechat.media_requests()] == ["xa-photo-1"]  # copied out once
        township.wechat.forget("xa-photo-1", picture=True)  # three days later
        detail = (await api.get(f"/api/v1/orders/{number}", headers=headers("chen"))).json()
        assert detail["state"] == "verified" and [rating["score"] for rating in detail["ratings"]] == [5]
        assert detail["grid"]["code"] == "XA-02" and detail["department"]["code"] == "minzheng"
        photos = {photo["source"]: photo for photo in detail["photos"]}
        assert set(photos) == {"resident", "resolve"} and photos["resident"]["media_id"] == "xa-photo-1"
        for source, data in (("resident", evidence), ("resolve", scene)):
            url = photos[source]["url"]
            assert url.startswith(f"{PUBLIC}/api/v1/media/")  # the public address; the proxy forwards it here
            async with httpx.AsyncClient() as phone:
                answer = await phone.get(base + url[len(PUBLIC):])
            assert answer.status_code == 200 and answer.content == data, source
        by_token = await api.get(f"/api/v1/media/{photos['resident']['id']}", headers=headers("chen"))
        assert by_token.status_code == 200 and by_token.content == evidence

    # ------------------------------------------------------------------ what the database holds
    await db.init_db(township.database_url)
    try:
        staff = await models.Staff.all().values_list("name", "openid", "oa_openid")
        assert not [row for row in staff if any(str(value or "").startswith("demo-") for value in row)]
        assert {name for name, *_ in staff} == {"周镇长", "吴主任", "郑网格", "钱网格", "孙网格", "冯建设", "陈民政",
                                                "信息员小周"}
        assert (await models.Township.get(id=1)).name == "新安镇"
        order = await models.Order.get(number=number)
        events = await models.OrderEvent.filter(order_id=order.id).order_by("id").values_list("action", "actor_name")
        assert [action for action, _ in events if action in ("submit", "dispatch", "accept", "resolve", "rate")] == [
            "submit", "dispatch", "accept", "resolve", "rate"]
        assert ("dispatch", "钱网格") in events and ("accept", "陈民政") in events
    finally:
        await db.close_db()


async def wait_for_stored_photos(api: httpx.AsyncClient, number: str, headers: dict, count: int,
                                 seconds: float = 20.0) -> dict:
    """The order once the server's own background loop has copied every photo out of WeChat."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        detail = (await api.get(f"/api/v1/orders/{number}", headers=headers)).json()
        if len(detail["photos"]) == count and all(photo["status"] == "stored" for photo in detail["photos"]):
            return detail
        await asyncio.sleep(0.2)
    raise AssertionError(f"the photos were not stored in time: {detail['photos']}")

