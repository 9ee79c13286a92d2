"""The OpenAPI document and Swagger UI on a running server, and what sanic-ext must not add to other routes."""
from __future__ import annotations

import pytest

from tests.e2e.api_harness import serve_api


@pytest.fixture
async def api(sqlite_url, fake_classifier):
    from orders.store import MemoryStore
    from tests.support import make_settings

    async with serve_api(make_settings(sqlite_url), MemoryStore(), fake_classifier) as api:
        yield api


async def test_the_document_describes_every_operation_well_enough_to_call_it(api):
    response = await api.client.get("/docs/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.0")
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                               "bearerFormat": "JWT"}
    operations = [(path, method, op) for path, ops in spec["paths"].items() if path.startswith("/api/v1/")
                  for method, op in ops.items()]
    assert len(operations) >= 33
    for path, method, op in operations:
        # linking is a resident's own; the phone's QR confirmation is a staff member's
        public = path.startswith("/api/v1/auth/") and path != "/api/v1/auth/link" and not path.endswith(
            ("/confirm", "/info"))
        assert (op.get("security") == [{"bearer": []}]) != public, (path, method)
        assert op["responses"]["default"]["content"]["application/json"]["schema"]["properties"]["error"]
        success = next(code for code in op["responses"] if code != "default")
        if (path, method) == ("/api/v1/media/{media_id}", "get"):  # the medium's own bytes
            assert op["responses"][success]["content"]["*/*"]["schema"]["format"] == "binary"
        elif not path.startswith("/api/v1/stats/report/"):  # a file: Excel or CSV
            assert op["responses"][success]["content"]["application/json"]["schema"]["type"] == "object", path
        for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
            assert any(p["name"] == name and p["in"] == "path" and p["required"] for p in op["parameters"])
        bodiless = path.endswith(("/accept", "/confirm")) or path == "/api/v1/auth/qr"  # the path says it all
        if method in ("post", "patch") and not bodiless:
            body = op["requestBody"]
            assert body["required"] is True
            media_type = "multipart/form-data" if path == "/api/v1/media" else "application/json"  # an upload
            assert body["content"][media_type]["schema"]["type"] == "object", (path, method)
    progress = spec["paths"]["/api/v1/orders/{number}/progress"]["post"]
    schema = progress["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["note"] and schema["properties"]["photos"]["maxItems"] == 9
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in progress["parameters"])
    assert {p["name"] for p in spec["paths"]["/api/v1/orders"]["get"]["parameters"]} >= {
        "state", "category", "department", "grid", "overdue", "since", "until", "q", "cursor", "limit",
        "extension_pending", "due_soon", "urgent"}


async def test_the_statistics_document_their_parameters(api):
    spec = (await api.client.get("/docs/openapi.json")).json()

    def parameters(path: str) -> dict[str, dict]:
        return {p["name"]: p for p in spec["paths"][f"/api/v1/stats/{path}"]["get"].get("parameters", [])}

    for path in ("summary", "breakdown", "trend"):
        documented = parameters(path)
        assert set(documented) >= {"period", "category", "department", "grid", "urgency"}, path
        assert "2026-03" in documented["period"]["description"]
        assert documented["category"]["schema"]["enum"] == ["社会民生", "农业产业", "平安建设", "生态环境", "安全生产"]
    assert "department" in parameters("breakdown")["by"]["schema"]["enum"]
    assert parameters("trend")["by"]["schema"]["enum"] == ["day", "week"]
    assert parameters("overdue")["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert parameters("feed")["after"]["schema"]["maximum"] == 2_147_483_647
    assert set(parameters("dashboard")) == {"period"}
    hotspots = parameters("hotspots")
    assert hotspots["hours"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 168, "default": 6}
    assert set(hotspots) == {"hours", "min_reports", "limit"}
    listed = spec["paths"]["/api/v1/stats/hotspots"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "hotspots" in listed["schema"]["required"]
    report = parameters("report/{filename}")
    assert report["filename"]["in"] == "path" and report["filename"]["schema"]["pattern"]
    assert report["sheet"]["schema"]["enum"] == ["summary", "orders"]
    content = spec["paths"]["/api/v1/stats/report/{filename}"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                            "text/csv; charset=utf-8"}
    summary = spec["paths"]["/api/v1/stats/summary"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(summary["schema"]["required"]) == {"period", "filters", "figures"}


async def test_swagger_ui_is_served_at_docs(api):
    response = await api.client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
    assert "openapi.json" in (await api.client.get("/docs/swagger-config")).text or "openapi.json" in response.text


async def test_sanic_ext_adds_no_cors_no_automatic_methods(api):
    options = await api.client.options("/api/v1/orders")
    assert options.status_code == 405
    assert "access-control-allow-origin" not in {k.lower() for k in options.headers}
    head = await api.client.head("/api/v1/orders")
    assert head.status_code == 405
    answer = await api.client.get("/api/v1/orders", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 401
    assert "access-control-allow-origin" not in {k.lower() for k in answer.headers}
    assert (await api.client.request("TRACE", "/healthz")).status_code == 405
