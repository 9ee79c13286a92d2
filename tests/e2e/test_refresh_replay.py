"""A refresh token works once, also when the store forgets: after a restart on the in-process store and while Redis
is down, a spent token is still refused (spent token ids are kept in the database until the token expires)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from orders import models
from orders.store import MemoryStore, RedisStore
from tests.e2e.api_harness import API, JIANSHE, SUPERVISOR, serve_api


async def refresh(api, token: str) -> httpx.Response:
    return await api.client.post(f"{API}/auth/refresh", json={"refresh_token": token})


def refused_as_spent(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.json()["error"]["message"] == "刷新凭证已使用过,请重新登录"


async def test_a_spent_refresh_token_stays_spent_after_a_restart(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        spent = (await api.login(SUPERVISOR))["refresh_token"]
        unspent = (await api.login(JIANSHE))["refresh_token"]
        assert (await refresh(api, spent)).status_code == 200
    # the process restarts: a new app on a new in-process store, which remembers nothing
    async with serve_api(settings, MemoryStore(), fake_classifier, demo=False) as api:
        assert refused_as_spent(await refresh(api, spent))
        assert (await refresh(api, unspent)).status_code == 200  # a token not yet used still works, once
        assert refused_as_spent(await refresh(api, unspent))


async def test_a_spent_refresh_token_is_refused_while_the_store_is_down(settings, fake_classifier):
    dead_redis = RedisStore("redis://127.0.0.1:1/0")
    try:
        async with serve_api(settings, dead_redis, fake_classifier) as api:
            tokens = await api.login(SUPERVISOR)
            first = await refresh(api, tokens["refresh_token"])
            assert first.status_code == 200 and first.json()["role"] == "supervisor"
            assert refused_as_spent(await refresh(api, tokens["refresh_token"]))
            assert (await refresh(api, first.json()["refresh_token"])).status_code == 200  # the new one works
    finally:
        await dead_redis.close()


async def test_spent_ids_are_kept_until_their_token_expires_then_forgotten(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        tokens = await api.login(SUPERVISOR)
        assert (await refresh(api, tokens["refresh_token"])).status_code == 200
        [row] = await models.SpentToken.all()
        lifetime = row.expires_at - datetime.now(timezone.utc)
        assert timedelta(days=settings.auth.refresh_days - 1) < lifetime <= timedelta(days=settings.auth.refresh_days)
        # a spent id whose token has expired is of no more use: the next spend clears it away
        await models.SpentToken.create(jti="expired0000000000", expires_at=datetime.now(timezone.utc) - timedelta(
            seconds=1))
        assert (await refresh(api, (await api.login(JIANSHE))["refresh_token"])).status_code == 200
        assert await models.SpentToken.filter(jti="expired0000000000").count() == 0
        assert await models.SpentToken.all().count() == 2  # the supervisor's and the one just spent
