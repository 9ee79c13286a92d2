"""The account's message mode enforced at the /wechat door (issue #15), on both backends.

WeChat's `signature` covers the token, timestamp and nonce, not the body: whoever sees one genuine callback URL (a
proxy log) can reuse its query for the replay window with any body and any FromUserName. In safe mode only a
ciphertext signed by `msg_signature` is a message; in plain and compatible modes a query seen before may carry the
same message again (WeChat's retry) and nothing else. Each mode is tried against each shape of callback, and URL
verification (GET) in every mode.
"""
from __future__ import annotations

import re

import pytest

from bot.chat import to_xml
from orders import models
from tests.integration.test_hardening_door import FlakyStore
from tests.integration.test_wechat_bot import AES_KEY, ALICE, clock, counts, open_door, sign  # noqa: F401 (clock)

BOB = "o_bob_resident_00000000002"
NUMBER = re.compile(r"工单号 (YK\d{8}-\d{4})")
MODES = ["plain", "compatible", "safe"]


def server_in(mode: str) -> dict[str, str]:
    """The [wechat] keys of a server in `mode`: plain is the default without an AES key."""
    return {"encoding_mode": mode, "aes_key": "" if mode == "plain" else AES_KEY}


async def post(door, params: dict, body: str):
    return await door.client.post(f"{door.base}/wechat", params=params, content=body.encode("utf-8"))


async def file_a_report(door, mode: str) -> str:
    """Alice reports a broken street light the way her server's mode expects; the order's number."""
    reply = await door.resident(mode=mode, aes_key=AES_KEY).says("楼坝村的路灯坏了好几天")
    return NUMBER.search(reply).group(1)


def plaintext_cancel(door, number: str) -> str:
    """What the attacker posts: a plaintext body, Alice as the sender, her order's cancel."""
    alice = door.resident(mode="plain").simulator
    return to_xml(alice.text_message(f"取消 {number}"))


# ------------------------------------------------------------------------------------------ the attack
async def test_safe_mode_refuses_a_replayed_query_with_a_plaintext_cancel(settings, store, clock):
    """A key configured and nothing else: safe mode. A genuine callback of Bob's, replayed with Alice's cancel in
    plaintext (with or without its encrypt_type and msg_signature), is 403 and Alice's order stays as it was."""
    async with open_door(settings, store, clock, wechat={"aes_key": AES_KEY}) as door:
        number = await file_a_report(door, "safe")
        bob = door.resident(BOB, mode="safe").simulator
        logged, body = bob.envelope(bob.text_message("你好"))
        genuine = await post(door, logged, body)
        assert genuine.status_code == 200 and "您好" in bob.read_reply(genuine.text)
        before = await counts()
        forged = plaintext_cancel(door, number)
        stripped = {key: value for key, value in logged.items() if key not in ("encrypt_type", "msg_signature")}
        for query in (stripped, logged, {**stripped, "encrypt_type": "aes"}):
            response = await post(door, query, forged)
            assert response.status_code == 403, (query, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        assert await counts() == before
        assert (await models.Order.get(number=number)).state == "dispatched"
        assert await models.OrderEvent.filter(action="cancel").count() == 0


async def test_the_encrypted_part_wins_over_a_plaintext_copy_beside_it(settings, store, clock):
    """Compatible mode: Bob's genuine ciphertext (signed) with Alice's cancel as the plaintext copy is Bob's message
    again, answered from dedup; Alice's order is not touched."""
    async with open_door(settings, store, clock, wechat=server_in("compatible")) as door:
        number = await file_a_report(door, "compatible")
        bob = door.resident(BOB, mode="compatible").simulator
        logged, body = bob.envelope(bob.text_message("你好"))
        first = bob.read_reply((await post(door, logged, body)).text)
        before = await counts()
        encrypt = re.search(r"<Encrypt>.*</Encrypt>", body).group(0)
        forged = plaintext_cancel(door, number).replace("</xml>", encrypt + "</xml>")
        response = await post(door, logged, forged)
        assert response.status_code == 200 and "<Encrypt>" in response.text
        assert bob.read_reply(response.text) == first  # addressed to Bob, his first reply
        assert await counts() == before
        assert (await models.Order.get(number=number)).state == "dispatched"


@pytest.mark.parametrize("mode", ["plain", "compatible"])
async def test_a_signed_query_seen_before_carries_only_the_same_message(settings, store, clock, mode):
    """Plaintext is allowed in these modes, so the query is the only thing signed: reused with another message it
    is refused (403, nothing written); with the same message (WeChat's retry) it is answered from dedup."""
    async with open_door(settings, store, clock, wechat=server_in(mode)) as door:
        number = await file_a_report(door, "plain")
        bob = door.resident(BOB).simulator
        logged, body = bob.envelope(bob.text_message("你好"))
        first = await post(door, logged, body)
        assert first.status_code == 200
        passive_query, passive = bob.envelope({**bob.event_message("LOCATION"), "Latitude": 28.6, "Longitude": 104.4})
        assert (await post(door, passive_query, passive)).text == "success"  # nothing to do, but its query is seen
        before = await counts()
        forged = plaintext_cancel(door, number)
        for query in (logged, passive_query):
            response = await post(door, query, forged)
            assert response.status_code == 403, response.text
        # Bob's message under Alice's name, or with another MsgId, is another message too
        other_sender = body.replace(BOB, ALICE)
        other_id = re.sub(r"<MsgId>(\d+)</MsgId>", lambda m: f"<MsgId>{int(m.group(1)) + 1}</MsgId>", body)
        for changed in (other_sender, other_id):
            assert (await post(door, logged, changed)).status_code == 403
        assert await counts() == before
        assert (await models.Order.get(number=number)).state == "dispatched"
        # WeChat's retry, the same query and the same message, gets the first answer
        again = await post(door, logged, body)
        assert again.status_code == 200 and bob.read_reply(again.text) == bob.read_reply(first.text)
        door.clock.advance(seconds=2)
        assert bob.read_reply((await post(door, logged, body)).text) == bob.read_reply(first.text)
        assert await counts() == before
        # Alice's own cancel, on a query of its own, still works
        assert "已取消" in await door.resident().says(f"取消 {number}")


async def test_refused_replays_do_not_count_against_the_resident_they_name(settings, store, clock):
    async with open_door(settings, store, clock, bot={"rate_limit_per_minute": 2}) as door:
        alice, bob = door.resident(), door.resident(BOB).simulator
        assert "工单号" in await alice.says("楼坝村的路灯坏了好几天")
        logged, body = bob.envelope(bob.text_message("你好"))
        assert (await post(door, logged, body)).status_code == 200
        for n in range(3):
            forged = to_xml(alice.simulator.text_message(f"新滩村第{n}盏路灯坏了"))
            assert (await post(door, logged, forged)).status_code == 403
        assert "工单号" in await alice.says("安富村的路灯也坏了")  # her second message of the minute, not her fifth
        assert "太频繁" in await alice.says("楼坝村的水管也破了")


async def test_with_the_store_down_plain_mode_still_answers_retries_once(settings, store, clock):
    """Without the store the queries cannot be remembered (README: Security); MsgId dedup still answers WeChat's
    retry once. What the store remembered before the outage is refused again when it is back."""
    flaky = FlakyStore(store)
    async with open_door(settings, flaky, clock) as door:
        number = await file_a_report(door, "plain")
        bob = door.resident(BOB).simulator
        logged, body = bob.envelope(bob.text_message("新滩村的路灯也坏了"))
        first = await post(door, logged, body)
        assert "工单号" in bob.read_reply(first.text)
        flaky.down = True
        during_query, during_body = bob.envelope(bob.text_message("安富村的路灯也坏了"))
        replies = [(await post(door, during_query, during_body)).text for _ in range(3)]
        assert len(set(replies)) == 1 and "工单号" in bob.read_reply(replies[0])
        assert await models.Order.filter(resident__openid=BOB).count() == 2
        flaky.down = False
        assert (await post(door, logged, plaintext_cancel(door, number))).status_code == 403
        assert (await models.Order.get(number=number)).state == "dispatched"


async def test_safe_mode_does_not_need_the_store_to_refuse_plaintext(settings, store, clock):
    flaky = FlakyStore(store)
    async with open_door(settings, flaky, clock, wechat=server_in("safe")) as door:
        number = await file_a_report(door, "safe")
        flaky.down = True
        before = await counts()
        bob = door.resident(BOB, mode="safe").simulator
        logged, _ = bob.envelope(bob.text_message("你好"))
        assert (await post(door, logged, plaintext_cancel(door, number))).status_code == 403
        assert await counts() == before
        assert (await models.Order.get(number=number)).state == "dispatched"


# ------------------------------------------------------------------------------------------ each mode × each shape
# what a server in each mode does with each shape of callback: the status, and whether the reply is encrypted
EXPECTED = {
    ("plain", "plain"): (200, False),
    ("plain", "compatible"): (200, False),  # no key to check the ciphertext with: the plaintext copy is read
    ("plain", "safe"): (400, None),  # nothing it can read
    ("compatible", "plain"): (200, False),
    ("compatible", "compatible"): (200, True),
    ("compatible", "safe"): (200, True),
    ("safe", "plain"): (403, None),
    ("safe", "compatible"): (200, True),  # the signed ciphertext is the message, the plaintext copy ignored
    ("safe", "safe"): (200, True),
}


@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_against_each_shape_of_callback_and_url_verification(settings, store, clock, mode):
    async with open_door(settings, store, clock, wechat=server_in(mode)) as door:
        token = door.settings.wechat.token
        timestamp, nonce = str(int(door.clock.now().timestamp())), "12345"
        verify = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "echostr": "echo-5678"}
        ok = await door.client.get(f"{door.base}/wechat", params=verify)
        assert ok.status_code == 200 and ok.text == "echo-5678", mode
        forged = await door.client.get(f"{door.base}/wechat", params={**verify, "signature": "0" * 40})
        assert forged.status_code == 403, mode

        filed = 0
        for n, shape in enumerate(MODES, start=1):
            status, encrypted = EXPECTED[(mode, shape)]
            sender = door.resident(mode=shape, aes_key=AES_KEY).simulator
            params, body = sender.envelope(sender.text_message(f"楼坝村第{n}盏路灯坏了好几天"))
            before = await counts()
            response = await post(door, params, body)
            assert response.status_code == status, (mode, shape, response.text)
            if status != 200:
                assert "error" in response.json() and await counts() == before, (mode, shape)
                continue
            filed += 1
            assert ("<Encrypt>" in response.text) == encrypted, (mode, shape)
            assert f"工单号 YK20261124-000{filed}" in sender.read_reply(response.text), (mode, shape)
            assert (await models.Order.get(number=f"YK20261124-000{filed}")).text == f"楼坝村第{n}盏路灯坏了好几天"
