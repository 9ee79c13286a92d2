"""The resident hears more than the start and the end, on both backends: a department's progress note marked
notify_resident reaches the resident in the fake WeChat (a customer-service message within the 48-hour window, else
the notify template) while an internal one reaches nobody and stays out of the resident's timeline; a decided
extension tells the resident the new deadline and the department the decision either way."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.chat import Simulator
from bot.notifier import Notifier
from orders import models
from orders.clock import Clock
from orders.dispatcher import Dispatcher
from tests.e2e.api_harness import JIANSHE, SUPERVISOR, serve_api
from tests.support import photo_bytes

RESIDENT = "o_resident_progress_00000001"
INTERNAL = "配件要从县里调,周三到货,老王负责"
FOR_RESIDENT = "电工已到现场,正在更换灯泡"


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


async def says(api, text: str) -> str | None:
    wechat = api.app.ctx.settings.wechat
    simulator = Simulator(api.base, wechat.token, RESIDENT, appid=wechat.appid)
    return await simulator.send_async(simulator.text_message(text), api.client)


async def deliver(api) -> None:
    """The outbox worker's rounds, through the real notifier and WeChat client to the fake WeChat."""
    settings = api.app.ctx.settings
    await Dispatcher(settings, Notifier(api.app.ctx.wechat, settings), Clock()).run_until_idle()


def texts_to(api, openid: str) -> list[str]:
    return [r.body["text"]["content"] for r in api.wechat.messages_to(openid) if r.path.endswith("/custom/send")]


async def reported_and_accepted(api) -> str:
    await says(api, "村口的路灯坏了一个星期了,晚上很黑")
    order = await models.Order.filter(resident__openid=RESIDENT).order_by("-id").first()
    assert (await api.post(JIANSHE, f"/orders/{order.number}/accept")).status_code == 200
    return order.number


async def test_a_note_for_the_resident_reaches_them_and_an_internal_one_does_not(api):
    number = await reported_and_accepted(api)
    internal = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": INTERNAL})
    assert internal.status_code == 200, internal.text
    told = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": FOR_RESIDENT, "notify_resident": True})
    assert told.status_code == 200, told.text
    await deliver(api)

    texts = texts_to(api, RESIDENT)  # the resident wrote minutes ago: customer-service messages
    assert len(texts) == 2 and "已由村镇建设办接单" in texts[0]
    assert FOR_RESIDENT in texts[1] and number in texts[1]
    assert not any(INTERNAL in text for text in texts)
    assert not any(INTERNAL in str(r.body) for r in api.wechat.messages())  # nobody else hears it either

    # the department's view has both, marked; the resident's only the note for them
    staff = [(e["reason"], e["data"].get("notify_resident"), e["action_label"]) for e in
             (await api.get(JIANSHE, f"/orders/{number}")).json()["timeline"] if e["action"] == "progress"]
    assert staff == [(INTERNAL, False, "办理进展(内部)"), (FOR_RESIDENT, True, "办理进展(已告知群众)")]
    mine = (await api.get(RESIDENT, f"/orders/{number}")).json()
    assert [(e["reason"], e["action_label"]) for e in mine["timeline"] if e["action"] == "progress"] == [
        (FOR_RESIDENT, "办理进展")]
    assert INTERNAL not in str(mine)


async def test_the_photos_of_an_internal_note_stay_with_the_staff(api):
    number = await reported_and_accepted(api)
    uploaded = await api.client.post("/api/v1/media", headers=await api.headers(JIANSHE),
                                     files={"file": ("scene.jpg", photo_bytes(), "image/jpeg")})
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()["id"]
    await api.post(JIANSHE, f"/orders/{number}/progress", {"note": INTERNAL, "photos": [photo]})
    staff = (await api.get(JIANSHE, f"/orders/{number}")).json()
    assert staff["progress_photos"] == [str(photo)] and [p["id"] for p in staff["photos"]] == [photo]
    mine = (await api.get(RESIDENT, f"/orders/{number}")).json()
    assert mine["progress_photos"] == [] and mine["photos"] == []
    assert [e["action"] for e in mine["timeline"]] == ["submit", "dispatch", "accept"]


async def test_outside_the_48_hour_window_the_note_is_a_template(api):
    number = await reported_and_accepted(api)
    await deliver(api)
    await models.Resident.filter(openid=RESIDENT).update(last_message_at=Clock().now() - timedelta(days=3))
    await api.post(JIANSHE, f"/orders/{number}/progress", {"note": FOR_RESIDENT, "notify_resident": True})
    await deliver(api)
    [template] = [r for r in api.wechat.messages_to(RESIDENT) if r.path.endswith("/template/send")]
    data = template.body["data"]
    assert template.body["template_id"] == api.app.ctx.settings.wechat.notify_template_id
    assert data["first"]["value"] == "您的诉求有新进展" and data["keyword1"]["value"] == number
    assert data["keyword2"]["value"] == FOR_RESIDENT


async def test_a_progress_note_with_a_bad_flag_is_refused_and_writes_nothing(api):
    number = await reported_and_accepted(api)
    bad = await api.post(JIANSHE, f"/orders/{number}/progress", {"note": FOR_RESIDENT, "notify_resident": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert "notify_resident" in bad.json()["error"]["message"]
    assert await api.events(number) == ["submit", "dispatch", "accept"]


async def test_a_decided_extension_tells_the_resident_the_deadline_and_the_department_either_way(api):
    number = await reported_and_accepted(api)
    await deliver(api)
    await api.post(JIANSHE, f"/orders/{number}/extension", {"days": 3, "reason": "等配件"})
    approved = await api.post(SUPERVISOR, f"/orders/{number}/extension/approve", {})
    assert approved.status_code == 200, approved.text
    deadline = approved.json()["resolve_deadline"]
    await deliver(api)
    [told] = [text for text in texts_to(api, RESIDENT) if "延期" in text]
    assert "延期 3 天" in told and number in told
    row = await models.Outbox.get(order__number=number, kind="extension_decided")
    assert row.recipient == RESIDENT and row.payload["resolve_deadline"][:16] == deadline[:16]
    department = [r.body for r in api.wechat.messages_to(JIANSHE) if "延期申请已批准" in str(r.body)]
    assert department and number in str(department[0])

    await api.post(JIANSHE, f"/orders/{number}/extension", {"days": 5, "reason": "还要等"})
    denied = await api.post(SUPERVISOR, f"/orders/{number}/extension/deny", {"reason": "配件本周能到"})
    assert denied.status_code == 200, denied.text
    await deliver(api)
    assert [r for r in api.wechat.messages_to(JIANSHE) if "延期申请未批准" in str(r.body)]
    assert len([text for text in texts_to(api, RESIDENT) if "延期" in text]) == 1  # a denial is the department's
    kinds = await models.Outbox.filter(order__number=number, kind__in=["extension_decided", "notify_extension_decided"]
                                       ).order_by("id").values_list("kind", "payload")
    assert sorted((kind, payload.get("approved")) for kind, payload in kinds) == [
        ("extension_decided", True), ("notify_extension_decided", False), ("notify_extension_decided", True)]
