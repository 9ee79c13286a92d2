"""Secrets and phone numbers stay out of the logs through a real flow (bot messages in safe mode, logins, an
order handled by staff, outbox messages sent to a fake WeChat, one of them failing first), and phone numbers
are masked in API answers to everyone but the resident who wrote them and those who handle the order."""
from __future__ import annotations

import base64
import logging

from bot.chat import Simulator
from bot.notifier import Notifier
from orders import models
from orders.dispatcher import Dispatcher
from tests.e2e.api_harness import ADMIN, JIANSHE, SUPERVISOR, serve_api

SECRETS = {
    "token": "tok9Xq7Lsecret",
    "aes_key": base64.b64encode(b"hardening-aes-key-of-32-bytes-ok").decode().rstrip("="),
    "app_secret": "appsecret-5f4dcc3b5aa765d61d83",
    "miniapp_secret": "miniappsecret-9e107d9d372bb682",
    "jwt_secret": "jwt-secret-for-the-hardening-test-0123456789",
}
PHONE = "13812345678"
RESIDENT = "o_hardening_resident_0000001"


async def test_a_real_flow_leaves_no_secret_or_phone_number_in_the_logs(settings, store, fake_classifier,
                                                                         capfd):
    """The app's JSON handler writes to stderr: capfd sees exactly what an operator's log collector would."""
    settings = settings.with_overrides(wechat={key: SECRETS[key] for key in
                                               ("token", "aes_key", "app_secret", "miniapp_secret")},
                                       auth={"jwt_secret": SECRETS["jwt_secret"]})
    async with serve_api(settings, store, fake_classifier) as api:
        wechat = api.app.ctx.settings.wechat
        resident = Simulator(api.base, wechat.token, RESIDENT, mode="safe", aes_key=wechat.aes_key,
                             appid=wechat.appid)
        reply = await resident.send_async(resident.text_message(f"楼坝村的路灯坏了,我的电话{PHONE}"), api.client)
        assert "工单号" in reply
        number = (await models.Order.filter(resident__openid=RESIDENT).first()).number
        # a forged request and an oversized one are refused and logged
        params, body = resident.envelope(resident.text_message("再说一遍 " + PHONE))
        assert (await api.client.post("/wechat", params={**params, "msg_signature": "0" * 40},
                                      content=body)).status_code == 403

        # phone numbers in API answers: the resident sees their own words, those who handle the order too (they
        # call back), other staff see them masked
        own = await api.get(RESIDENT, f"/orders/{number}")
        assert own.status_code == 200 and PHONE in own.text
        seen = await api.get(ADMIN, f"/orders/{number}")
        assert seen.status_code == 200, seen.text
        assert PHONE not in seen.text and "138****5678" in seen.text
        assert PHONE in (await api.get(JIANSHE, f"/orders/{number}")).text
        listed = await api.get(SUPERVISOR, "/orders")
        assert listed.status_code == 200 and PHONE not in listed.text
        assert (await api.post(JIANSHE, f"/orders/{number}/accept")).status_code == 200

        # the outbox goes out to (fake) WeChat, the first call failing and logged
        api.wechat.fail_next(1)
        dispatcher = Dispatcher(api.app.ctx.settings, Notifier(api.app.ctx.wechat, api.app.ctx.settings),
                                backoff_base_seconds=0, backoff_max_seconds=0)
        await dispatcher.run_until_idle()
        assert api.wechat.received, "the flow really called the WeChat API (token fetch and sends)"
        assert await models.Outbox.filter(status="sent").count() >= 1

        # a careless log line carrying every secret still comes out redacted
        logging.getLogger("sidan.test").error("careless: %s phone %s access_token=%s", SECRETS, PHONE,
                                              api.wechat.current_token)

    out, err = capfd.readouterr()
    logs = out + err
    assert logs.count("\n") >= 10 and "careless" in logs and "refused WeChat request" in logs
    assert '"logger": "sidan.outbox"' in logs and "Goin' Fast" in logs
    for name, value in {**SECRETS, "phone": PHONE}.items():
        assert value not in logs, f"{name} leaked into the logs"
    assert "138****5678" in logs
