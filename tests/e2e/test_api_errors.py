"""Every error, whatever raised it (a use case, Sanic's router, Sanic's HTTP parser, an unexpected exception),
answers in the API's shape {"error": {"code", "message"}} with a Chinese message; the dashboard page and /wechat
keep their own answers."""
from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlsplit

import pytest

from orders import models
from tests.e2e.api_harness import JIANSHE, SUPERVISOR, serve_api

CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
async def api(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier) as api:
        yield api


def assert_error_shape(status: int, headers, body: bytes, expected_status: int, code: str | None = None) -> dict:
    assert status == expected_status, (status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) <= {"code", "message", "details"} and error["code"] and CHINESE.search(error["message"]), error
    if code is not None:
        assert error["code"] == code, error
    return error


async def raw_request(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes no HTTP client would send: what Sanic's parser refuses before any handler runs."""
    address = urlsplit(base)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)}
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 10)
        return status, headers, body
    finally:
        writer.close()


async def test_router_and_http_errors_answer_in_the_api_shape(api):
    for path in ("/api/v1/nowhere", "/nowhere", "/dashboard/static/nowhere.js"):
        response = await api.client.get(path)
        assert_error_shape(response.status_code, response.headers, response.content, 404, "not_found")
    response = await api.client.delete("/api/v1/orders", headers=await api.headers(SUPERVISOR))
    assert_error_shape(response.status_code, response.headers, response.content, 405, "method_not_allowed")
    number = await api.submit("村口的路灯坏了")
    too_big = api.app.config.REQUEST_MAX_SIZE + 1
    token = (await api.headers(JIANSHE))["Authorization"]
    assert_error_shape(*await raw_request(api.base, (
        f"POST /api/v1/orders/{number}/progress HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {too_big}\r\n\r\n").encode()), 413, "payload_too_large")
    response = await api.client.post(f"/api/v1/orders/{number}/progress", content=b'{"note": ',
                                     headers=await api.headers(JIANSHE))
    assert_error_shape(response.status_code, response.headers, response.content, 422, "invalid_input")
    assert await api.events(number) == ["submit", "dispatch"]


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nthis line has no colon\r\n\r\n", 400),
    (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n", 400),
    (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", 417),
    (b"GET /api/v1/\xe5\xb7\xa5\xe5\x8d\x95 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n", 413),
])
async def test_requests_sanic_refuses_before_any_handler_answer_in_the_api_shape(api, request_bytes, status):
    assert_error_shape(*await raw_request(api.base, request_bytes), status)


async def test_an_unexpected_exception_is_a_chinese_500_logged_with_the_request_id(settings, store, fake_classifier,
                                                                                  monkeypatch, capfd):
    """The app is built inside the test, as capfd runs: its log handler writes to the stderr it finds then."""
    from orders import queries

    async def broken(*args, **kwargs):
        raise RuntimeError("database said something secret at /srv/sidan/orders/queries.py")

    monkeypatch.setattr(queries, "list_orders", broken)
    async with serve_api(settings, store, fake_classifier) as api:
        response = await api.client.get("/api/v1/orders",
                                        headers=await api.headers(SUPERVISOR, **{"X-Request-ID": "trace-me-0001"}))
    error = assert_error_shape(response.status_code, response.headers, response.content, 500, "internal_error")
    for leak in ("secret", "RuntimeError", "Traceback", "queries.py"):
        assert leak not in response.text
    assert error["details"] == {"request_id": "trace-me-0001"}
    assert response.headers["X-Request-ID"] == "trace-me-0001"
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines()
              if line.startswith("{") and "trace-me-0001" in line]
    assert any(entry["level"] == "ERROR" and entry["request_id"] == "trace-me-0001"
               and "RuntimeError" in entry.get("exc", "") for entry in logged), logged


async def test_a_deeply_nested_body_on_an_idempotent_route_is_a_422_that_changes_nothing(api):
    number = await api.submit("村口的路灯坏了")
    before = await models.IdempotencyRecord.all().count()
    for depth in (100, 10_000, 200_000):
        for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
            response = await api.client.post(f"/api/v1/orders/{number}/progress", content=nested.encode(),
                                             headers=await api.headers(JIANSHE, **{"Idempotency-Key": f"n{depth}"}))
            assert_error_shape(response.status_code, response.headers, response.content, 422, "invalid_input")
    assert await models.IdempotencyRecord.all().count() == before
    assert await api.events(number) == ["submit", "dispatch"]


async def test_the_dashboard_page_and_the_wechat_door_keep_their_own_answers(api):
    page = await api.client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # WeChat's server verification is answered in plain text; a forged one is refused with 403, as before
    refused = await api.client.get("/wechat", params={"signature": "0" * 40, "timestamp": "1", "nonce": "n",
                                                      "echostr": "hello"})
    assert_error_shape(refused.status_code, refused.headers, refused.content, 403)


STATS_WITH_A_PERIOD = ("/api/v1/stats/summary", "/api/v1/stats/breakdown", "/api/v1/stats/trend",
                       "/api/v1/stats/dashboard")


async def test_periods_out_of_range_on_any_stats_endpoint_are_a_422(api):
    headers = await api.headers(SUPERVISOR)
    asked = [(path, {"period": period}) for path in STATS_WITH_A_PERIOD
             for period in ("0001-01", "0001-01-01", "9999-12-31", "0001-01-01..0001-01-31")]
    asked += [(f"/api/v1/stats/report/{month}.{kind}", {}) for month in ("0001-01", "9999-12")
              for kind in ("xlsx", "csv")]
    for path, params in asked:
        response = await api.client.get(path, params=params, headers=headers)
        error = assert_error_shape(response.status_code, response.headers, response.content, 422, "invalid_input")
        assert "时间段" in error["message"], (path, params, error)
