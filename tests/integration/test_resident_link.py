"""One resident, two doors, on SQLite + in-process store and PostgreSQL + Redis: the unionid fetched in the background
through the real WeChat client from the fake WeChat, the two rows of one person merged (orders, their ratings and
history follow; recorded; idempotent; two doors at once merge once), mini-program logins led to the kept row, link
codes (wrong, expired, used, replaced, guessed: refused, nothing written), and the contact phone a report leaves."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone

import pytest

from api.demo.township import load_demo_data
from bot.identity_source import WeChatUnionid
from bot.wechat_api import WeChatClient
from orders import link_codes, models, residents, unionid_lookup
from orders.clock import FrozenClock
from orders.errors import DomainError
from orders.link_codes import LinkCodeInvalid, LinkCodes, TooManyTries
from orders.residents import LinkRefused
from orders.services import OrderService
from orders.unionid_lookup import UnionidLookups
from tests.fake_wechat import FakeWeChat
from tests.support import FakeClassifier

START = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
OA, MINI, UNION = "oOfficialAccount0001", "oMiniProgram0001", "union-0001"


@pytest.fixture
async def wired(settings, store, orm):
    await load_demo_data()
    fake = FakeWeChat().start()
    settings = settings.with_overrides(wechat={"api_base": fake.base_url, "api_timeout_seconds": 0.5})
    client = WeChatClient(settings, store)
    clock = FrozenClock(START)
    service = OrderService(settings, FakeClassifier(), clock=clock)
    yield fake, clock, service, UnionidLookups(WeChatUnionid(client), clock, rng=random.Random(3),
                                               backoff_base_seconds=30.0, backoff_max_seconds=600.0, max_attempts=3)
    await client.close()
    fake.stop()


async def rows() -> dict[str, int]:
    return {"residents": await models.Resident.all().count(), "links": await models.ResidentLink.all().count(),
            "events": await models.OrderEvent.all().count(), "orders": await models.Order.all().count()}


async def test_the_unionid_is_fetched_once_and_merges_the_mini_program_row(wired):
    fake, clock, service, lookups = wired
    fake.unionids = {OA: UNION}
    official = (await service.submit(openid=OA, text="村口的路灯坏了")).order
    mini = await residents.for_miniapp(MINI, UNION, clock.now())  # the mini-program came first: its own row
    mini_order = (await service.submit(openid=MINI, text="河边的垃圾没人收")).order
    await models.Rating.create(order_id=mini_order.id, score=4, resolved=True, at=clock.now())
    await service.submit(openid=OA, text="水管漏水")  # the same resident again: still one lookup
    await unionid_lookup.ensure(OA, clock.now())
    await unionid_lookup.ensure(OA, clock.now())
    assert await models.UnionidLookup.all().count() == 1

    report = await lookups.run_until_idle()
    assert (report.found, report.merged) == (1, 1)
    assert len(fake.user_info_requests()) == 1 and fake.user_info_requests()[0].query["openid"] == OA
    kept = await models.Resident.get(openid=OA)
    assert (kept.unionid, kept.miniapp_openid) == (UNION, MINI)
    assert (await models.Resident.get(id=mini.id)).merged_into_id == kept.id
    assert set(await models.Order.filter(resident_id=kept.id).values_list("id", flat=True)) >= {
        official.id, mini_order.id}
    assert (await models.Rating.get(order_id=mini_order.id)).order_id == mini_order.id  # ratings ride on orders
    moved = await models.Order.get(id=mini_order.id)
    assert moved.version == mini_order.version + 1
    [event] = await models.OrderEvent.filter(order_id=mini_order.id, action=residents.LINK_ACTION)
    assert (event.from_state, event.to_state, event.actor_role, event.data["via"]) == (
        moved.state, moved.state, "system", "unionid")
    [link] = await models.ResidentLink.all()
    assert (link.resident_id, link.merged_id, link.from_openid, link.to_openid, link.via, link.orders_moved) == (
        kept.id, mini.id, MINI, OA, "unionid", 1)
    # both doors now lead to the kept row; its unionid is known, so no lookup is queued again
    assert (await residents.for_miniapp(MINI, UNION, clock.now())).id == kept.id
    assert (await residents.for_miniapp(MINI, None, clock.now())).id == kept.id
    await models.UnionidLookup.all().delete()
    await unionid_lookup.ensure(OA, clock.now())
    assert await models.UnionidLookup.all().count() == 0
    assert (await lookups.run_until_idle()).claimed == 0


async def test_no_unionid_is_an_answer_and_a_failing_wechat_is_retried_then_given_up_then_armed_again(wired):
    fake, clock, service, lookups = wired
    await service.submit(openid=OA, text="村口的路灯坏了")
    await unionid_lookup.ensure(OA, clock.now())
    fake.fail_next(10)
    assert (await lookups.run_until_idle()).retried == 1
    [job] = await models.UnionidLookup.all()
    assert job.status == "pending" and job.attempts == 1 and "500" in job.last_error
    assert (await lookups.run_until_idle()).claimed == 0  # not due yet: backoff
    for _ in range(2):
        clock.advance(minutes=15)
        await lookups.run_until_idle()
    job = await models.UnionidLookup.get(id=job.id)
    assert (job.status, job.attempts) == ("failed", 3)
    await unionid_lookup.ensure(OA, clock.now())  # a message soon after: not armed again yet
    assert (await models.UnionidLookup.get(id=job.id)).status == "failed"
    clock.advance(days=1, minutes=1)
    fake.fail_next(0)
    await unionid_lookup.ensure(OA, clock.now())
    report = await lookups.run_until_idle()  # WeChat back, but the account gives no unionid: done, not asked again
    assert (report.found, report.without) == (0, 1)
    job = await models.UnionidLookup.get(id=job.id)
    assert (job.status, job.attempts) == ("done", 1)
    assert (await models.Resident.get(openid=OA)).unionid is None


async def test_a_login_with_the_unionid_the_official_account_row_has_records_its_openid_there(wired):
    fake, clock, service, _ = wired
    order = (await service.submit(openid=OA, text="村口的路灯坏了")).order
    await models.Resident.filter(openid=OA).update(unionid=UNION)
    first, again = await asyncio.gather(residents.for_miniapp(MINI, UNION, clock.now()),
                                        residents.for_miniapp(MINI, UNION, clock.now()))
    assert first.id == again.id == order.resident_id
    assert (await models.Resident.get(id=first.id)).miniapp_openid == MINI
    assert not await models.Resident.filter(openid=MINI).exists()
    [link] = await models.ResidentLink.all()
    assert (link.merged_id, link.from_openid, link.to_openid, link.orders_moved) == (None, MINI, OA, 0)


async def test_merging_twice_or_from_both_doors_at_once_merges_once(wired):
    fake, clock, service, _ = wired
    official = (await service.submit(openid=OA, text="村口的路灯坏了")).order
    mini_order = (await service.submit(openid=MINI, text="河边的垃圾没人收")).order
    await models.Resident.filter(openid__in=[OA, MINI]).update(unionid=UNION)
    mini_id = mini_order.resident_id
    answers = await asyncio.gather(
        residents.unionid_found(official.resident_id, UNION, clock.now()),
        residents.for_miniapp(MINI, UNION, clock.now()),
        residents.merge(official.resident_id, mini_id, residents.VIA_UNIONID, "测试", clock.now()))
    assert answers[1].id == official.resident_id
    assert await models.ResidentLink.all().count() == 1
    assert await models.OrderEvent.filter(action=residents.LINK_ACTION).count() == 1
    before = await rows()
    again = await residents.merge(official.resident_id, mini_id, residents.VIA_UNIONID, "测试", clock.now())
    assert again.merged_id is None and await rows() == before
    assert await models.Order.filter(resident_id=official.resident_id).count() == 2


async def test_pending_notices_to_the_merged_openid_follow_to_the_kept_one(wired):
    fake, clock, service, _ = wired
    await service.submit(openid=OA, text="村口的路灯坏了")
    mini_order = (await service.submit(openid=MINI, text="河边的垃圾没人收")).order
    await models.Outbox.create(kind="notify_resolved", order_id=mini_order.id, recipient=MINI, payload={},
                               next_attempt_at=clock.now(), created_at=clock.now())
    kept = await models.Resident.get(openid=OA)
    await residents.merge(kept.id, mini_order.resident_id, residents.VIA_UNIONID, "测试", clock.now())
    assert await models.Outbox.filter(recipient=MINI).count() == 0
    assert await models.Outbox.filter(recipient=OA, kind="notify_resolved").count() == 1


async def test_a_link_code_merges_once_and_every_bad_code_is_refused_writing_nothing(wired, store, monkeypatch):
    fake, clock, service, _ = wired
    codes = LinkCodes(store, "secret")
    await service.submit(openid=OA, text="村口的路灯坏了")
    mini_order = (await service.submit(openid=MINI, text="河边的垃圾没人收")).order
    official, mini = await models.Resident.get(openid=OA), await models.Resident.get(openid=MINI)
    code = await codes.issue(official.id)
    assert len(code) == 6 and code.isdigit()
    before = await rows()
    wrong = "000000" if code != "000000" else "111111"
    for bad, error in ((wrong, "不正确或已过期"), ("12a", "6 位数字"), ("", "6 位数字")):
        with pytest.raises(LinkCodeInvalid, match=error):
            await codes.redeem(bad, mini.id, clock.now())
    assert await rows() == before

    newer = await codes.issue(official.id)  # the older code stops working
    if newer != code:
        with pytest.raises(LinkCodeInvalid):
            await codes.redeem(code, mini.id, clock.now())
    linked = await codes.redeem(f" {newer[:3]} {newer[3:]} ", mini.id, clock.now())
    assert (linked.resident_id, linked.merged_id, linked.orders_moved) == (official.id, mini.id, 1)
    assert (await models.Order.get(id=mini_order.id)).resident_id == official.id
    [link] = await models.ResidentLink.all()
    assert (link.via, link.from_openid, link.to_openid) == ("code", MINI, OA)
    [event] = await models.OrderEvent.filter(action=residents.LINK_ACTION)
    assert (event.actor_role, event.actor_id) == ("resident", official.id)
    with pytest.raises(LinkCodeInvalid):  # used once
        await codes.redeem(newer, mini.id, clock.now())

    monkeypatch.setattr(link_codes, "CODE_MINUTES", 0.05 / 60)  # a code that expires in 50 ms
    other = await service.submit(openid="oMiniProgram0002", text="桥上的栏杆断了")
    expiring = await codes.issue(official.id)
    await asyncio.sleep(0.2)
    before = await rows()
    with pytest.raises(LinkCodeInvalid, match="已过期"):
        await codes.redeem(expiring, other.order.resident_id, clock.now())
    assert await rows() == before


async def test_guessing_codes_is_stopped_and_two_official_accounts_never_merge(wired, store):
    fake, clock, service, _ = wired
    codes = LinkCodes(store, "secret")
    await service.submit(openid=OA, text="村口的路灯坏了")
    await service.submit(openid=MINI, text="河边的垃圾没人收")
    official, mini = await models.Resident.get(openid=OA), await models.Resident.get(openid=MINI)
    code = await codes.issue(official.id)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(link_codes.MAX_TRIES):
        with pytest.raises(LinkCodeInvalid):
            await codes.redeem(wrong, mini.id, clock.now())
    with pytest.raises(TooManyTries) as refused:  # even the right code, until the window passes
        await codes.redeem(code, mini.id, clock.now())
    assert refused.value.status == 429 and await models.ResidentLink.all().count() == 0

    # a mini-program row already linked to another official-account row cannot take this one's code
    other = (await service.submit(openid="oOfficialAccount0002", text="桥上的栏杆断了")).order
    await models.Resident.filter(id=other.resident_id).update(miniapp_openid="oMiniProgram0009")
    fresh = LinkCodes(store, "another-secret")
    with pytest.raises(LinkRefused, match="已经关联了另一个公众号"):
        await fresh.redeem(await fresh.issue(official.id), other.resident_id, clock.now())
    assert isinstance(refused.value, DomainError) and await models.ResidentLink.all().count() == 0


async def test_a_phone_left_in_a_report_is_the_residents_contact_phone(wired):
    fake, clock, service, _ = wired
    await service.submit(openid=OA, text="村口的路灯坏了")
    assert (await models.Resident.get(openid=OA)).contact_phone is None
    await service.submit(openid=OA, text="水管漏水了,联系电话 139-1234-5678")
    assert (await models.Resident.get(openid=OA)).contact_phone == "13912345678"
    await service.submit(openid=OA, text="路口井盖丢了 0871-1234567")
    assert (await models.Resident.get(openid=OA)).contact_phone == "0871-1234567"


async def test_a_unionid_that_would_link_a_second_mini_program_account_is_refused_and_not_asked_again(wired):
    fake, clock, service, lookups = wired
    fake.unionids = {OA: UNION}
    await service.submit(openid=OA, text="村口的路灯坏了")
    await models.Resident.filter(openid=OA).update(miniapp_openid="oMiniLinkedByCode")  # linked with a code before
    await residents.for_miniapp(MINI, UNION, clock.now())  # another mini-program account with the same unionid
    await unionid_lookup.ensure(OA, clock.now())
    before = await rows()
    await lookups.run_until_idle()
    [job] = await models.UnionidLookup.all()
    assert job.status == "done" and "另一个小程序账号" in job.last_error
    assert await rows() == before and (await models.Resident.get(openid=MINI)).merged_into_id is None
