"""New reports written in groups (bot.intake) on SQLite + in-process store and PostgreSQL + Redis: a burst leaves
exactly the rows that the same reports sent one at a time leave, and a batch that fails loses and duplicates nothing.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from tortoise import Tortoise

from api.demo.township import load_demo_data
from bot.conversation import Conversation
from bot.inbound import Inbound
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.services import OrderService
from orders.sql import insert_with_ids, new_instance
from tests.support import fail_inserts_into

START = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)
TEXTS = [
    "楼坝村村口的路灯坏了一个星期,晚上很黑",  # confident: dispatched to 村镇建设办
    "我家的低保今年还没有发下来,想问问怎么回事",  # confident: 民政
    "隔壁两家为了宅基地吵架,快要打起来了",  # unsure: waits for a grid worker
    "仓库里有煤气泄漏的味道,很危险",  # danger: the supervisor is told at once
    "后山有人在烧秸秆,烟很大",
    "河边有一段护栏松动了,小孩容易掉下去",  # no rule matches: low confidence
]


@pytest.fixture
async def conversation(orm, settings, store, fake_classifier):
    await load_demo_data()
    clock = FrozenClock(START)
    return Conversation(settings, OrderService(settings, fake_classifier, clock=clock), store, clock)


def message(sender: str, n: int, text: str) -> Inbound:
    return Inbound(f"msg:{sender}:{n}", sender, "text", "text", text=text)


async def written_for(openid: str) -> dict:
    """What one resident's report left in the database, without what differs by design (ids, numbers, who)."""
    order = await models.Order.get(resident__openid=openid)
    events = await models.OrderEvent.filter(order_id=order.id).order_by("id").values(
        "action", "from_state", "to_state", "actor_role", "actor_name", "reason", "data", "at")
    outbox = await models.Outbox.filter(order_id=order.id).order_by("id").values("kind", "recipient", "payload")
    for row in outbox:
        row["payload"].pop("number")
    inbound = await models.InboundMessage.get(openid=openid)
    assert inbound.order_id == order.id
    resident = await models.Resident.get(openid=openid)
    return {
        "order": {name: getattr(order, name) for name in (
            "text", "state", "category", "department_id", "urgency", "confidence", "predicted_category",
            "predicted_department", "auto_dispatched", "accept_deadline", "resolve_deadline", "submitted_at",
            "dispatched_at", "version", "photos", "grid_id")},
        "events": [{**event, "actor_name": event["actor_name"] if event["actor_role"] != "resident" else "居民"}
                   for event in events],
        "outbox": outbox,
        "reply": inbound.reply.replace(order.number, "#"),
        "last_message_at": resident.last_message_at,
    }


async def test_a_burst_leaves_the_same_rows_as_one_by_one(conversation, backend):
    one_by_one = [await conversation.reply_to(message(f"o_single_{n}", 1, text)) for n, text in enumerate(TEXTS)]
    burst = await asyncio.gather(*(conversation.reply_to(message(f"o_burst_{n}", 1, text))
                                   for n, text in enumerate(TEXTS)))

    numbers = [reply.splitlines()[0].split("工单号 ")[1].rstrip("。") for reply in one_by_one + list(burst)]
    assert len(set(numbers)) == 2 * len(TEXTS)
    assert sorted(numbers) == [f"YK20261124-{n:04d}" for n in range(1, 2 * len(TEXTS) + 1)]  # no gap, no repeat
    for n in range(len(TEXTS)):
        single, grouped = await written_for(f"o_single_{n}"), await written_for(f"o_burst_{n}")
        assert grouped == single, TEXTS[n]
    assert await models.Order.all().count() == 2 * len(TEXTS)
    if backend == "sqlite":  # the in-process store never yields: the whole burst queues before the first write
        assert conversation.intake.batches == len(TEXTS) + 1 and conversation.intake.fallbacks == 0


async def test_a_batch_with_an_already_recorded_message_is_redone_one_by_one(conversation, backend):
    first = await conversation.reply_to(message("o_alice", 7, TEXTS[0]))
    await conversation.store.delete("wx:msg:msg:o_alice:7")  # the store forgot: only the database remembers
    replies = await asyncio.gather(
        conversation.reply_to(message("o_bob", 1, TEXTS[1])),
        conversation.reply_to(message("o_alice", 7, TEXTS[0])),  # WeChat's late retry
        conversation.reply_to(message("o_carol", 1, TEXTS[2])),
    )
    assert replies[1] == first
    assert await models.Order.all().count() == 3
    assert await models.InboundMessage.all().count() == 3
    for openid, reply in (("o_bob", replies[0]), ("o_carol", replies[2])):
        order = await models.Order.get(resident__openid=openid)
        assert order.number in reply
        assert (await models.InboundMessage.get(openid=openid)).reply == reply
    if backend == "sqlite":
        assert conversation.intake.fallbacks == 1


async def test_a_report_the_batch_cannot_take_gets_its_own_answer(conversation):
    replies = await asyncio.gather(
        conversation.reply_to(message("o_dave", 1, TEXTS[0])),
        conversation.reply_to(message("o_erin", 1, "路" * 2500)),  # too long: the dialog says so
        conversation.reply_to(message("o_frank", 1, "5")),  # a score with nothing to rate: not a report
    )
    assert "工单号" in replies[0]
    assert "太长" in replies[1] and "工单号" not in replies[1]
    assert "工单号" not in replies[2]
    assert await models.Order.all().count() == 1
    assert await models.InboundMessage.all().count() == 3


async def test_a_burst_with_messages_that_are_no_request_files_only_the_requests(conversation, fake_classifier):
    junk = ["你好10", "asdfgh qwerty", "测试", "哈哈"]
    sent = [(f"o_junk_{n}", text) for n, text in enumerate(junk)] + [(f"o_real_{n}", text)
                                                                     for n, text in enumerate(TEXTS[:3])]
    replies = await asyncio.gather(*(conversation.reply_to(message(openid, 1, text)) for openid, text in sent))
    assert all("工单号" not in reply and "一句话说清什么事、在哪里" in reply for reply in replies[:len(junk)])
    assert all("已收到您的诉求,工单号" in reply for reply in replies[len(junk):])
    assert await models.Order.all().count() == 3
    assert not await models.Order.filter(resident__openid__startswith="o_junk_").exists()
    recorded = dict(await models.InboundMessage.all().values_list("openid", "reply"))
    assert recorded == dict(zip([openid for openid, _ in sent], replies))  # every message recorded, with its reply
    assert await models.Resident.filter(openid__startswith="o_junk_").count() == len(junk)
    assert fake_classifier.calls == len(sent)  # routed once each, screen included
    assert conversation.intake.fallbacks == 0


async def test_a_database_failure_in_a_batch_writes_nothing_and_answers_busy(conversation, monkeypatch, backend):
    fail_inserts_into(monkeypatch, "inbound_message", ConnectionError("database went away"))
    replies = await asyncio.gather(*(conversation.reply_to(message(f"o_{n}", 1, text))
                                     for n, text in enumerate(TEXTS[:3])))
    assert all("稍后" in reply for reply in replies)
    for table in (models.Order, models.OrderEvent, models.Outbox, models.InboundMessage, models.DailyCounter):
        assert await table.all().count() == 0, table.__name__
    if backend == "sqlite":  # the batch failed, then each report on its own
        assert conversation.intake.fallbacks == 1


async def test_a_failing_observer_does_not_undo_a_written_batch(conversation, caplog):
    def broken_metrics(order, prediction):
        raise RuntimeError("metrics broke")

    conversation.orders.on_submit.append(broken_metrics)
    replies = await asyncio.gather(*(conversation.reply_to(message(f"o_{n}", 1, text))
                                     for n, text in enumerate(TEXTS[:3])))
    assert all("工单号" in reply for reply in replies)
    assert await models.Order.all().count() == 3 and conversation.intake.fallbacks == 0
    assert "metrics broke" in caplog.text


async def test_an_order_built_for_the_batch_is_the_order_the_orm_builds(conversation):
    values = {"number": "YK20261124-0009", "resident_id": None, "text": "路灯坏了", "normalized_text": "路灯坏了",
              "photos": [{"media_id": "m1"}], "latitude": 28.6, "longitude": 104.4, "urgency": "操心事",
              "state": "submitted", "submitted_at": START, "updated_at": START}
    fast, usual = new_instance(models.Order, **values), models.Order(**values)
    for name in models.Order._meta.fields_db_projection:
        assert getattr(fast, name) == getattr(usual, name), name
    assert not fast._saved_in_db and fast.pk is None
    without_photos = {name: value for name, value in values.items() if name != "photos"}
    first, second = new_instance(models.Order, **without_photos), new_instance(models.Order, **without_photos)
    first.photos.append({"media_id": "m2"})
    assert second.photos == []  # each gets its own default
    await insert_with_ids(Tortoise.get_connection("default"), [fast], key="number")
    stored = await models.Order.get(id=fast.pk)
    assert stored.number == values["number"] and stored.photos == fast.photos and stored.version == 0
