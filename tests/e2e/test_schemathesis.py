"""schemathesis drives every /api/v1 operation from the OpenAPI document of a server on loopback, with generated
valid and invalid input: no answer may be a 5xx, and every success must match its documented schema. Some calls
also carry what a schema cannot describe: out-of-range periods and deeply nested JSON bodies.

The CLI runs as a subprocess (as CI would run it) while the server keeps serving in this test's event loop.
This module is also the run's hooks file: each operation is called with the token of a role it admits, and
generated order numbers and staff ids are now and then swapped for real ones, so requests reach the use cases
instead of stopping at 403 or 404.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import zlib
from pathlib import Path

from tests.e2e.api_harness import ADMIN, GRID_WORKER, JIANSHE, SUPERVISOR, serve_api
from tests.support import REPO

CONTEXT_ENV = "SIDAN_SCHEMATHESIS_CONTEXT"
RESIDENT = "oResident0001"
MAX_EXAMPLES = 8
RUN_TIMEOUT_SECONDS = 120
PERIOD_PATHS = {f"/api/v1/stats/{name}" for name in ("summary", "breakdown", "trend", "dashboard")}
HOSTILE_PERIODS = ["0001-01", "0001-01-01", "9999-12-31", "9999-12", "0001-01-01..9999-12-31", "9999"]
DEEP_NESTING = [300, 5_000, 100_000]  # past pydantic's limit, past the interpreter's stack, far past it

# Who calls each operation: someone it admits (the authorisation table is tested in test_api_auth.py);
# the admin calls any other (statistics).
CALLER = {
    ("GET", "/api/v1/me"): RESIDENT,
    ("GET", "/api/v1/orders"): SUPERVISOR,
    ("GET", "/api/v1/orders/{number}"): JIANSHE,
    ("GET", "/api/v1/dispatch-queue"): GRID_WORKER,
    ("GET", "/api/v1/my/orders"): RESIDENT,
    ("POST", "/api/v1/orders/{number}/dispatch"): GRID_WORKER,
    ("POST", "/api/v1/orders/{number}/accept"): JIANSHE,
    ("POST", "/api/v1/orders/{number}/progress"): JIANSHE,
    ("POST", "/api/v1/orders/{number}/extension"): JIANSHE,
    ("POST", "/api/v1/orders/{number}/extension/approve"): SUPERVISOR,
    ("POST", "/api/v1/orders/{number}/extension/deny"): SUPERVISOR,
    ("POST", "/api/v1/orders/{number}/return"): JIANSHE,
    ("POST", "/api/v1/orders/{number}/invalidate"): GRID_WORKER,
    ("POST", "/api/v1/orders/{number}/merge"): GRID_WORKER,
    ("POST", "/api/v1/orders/{number}/resolve"): JIANSHE,
    ("POST", "/api/v1/orders/{number}/rate"): RESIDENT,
    ("POST", "/api/v1/orders/{number}/cancel"): RESIDENT,
    ("GET", "/api/v1/departments"): JIANSHE,
    ("GET", "/api/v1/grids"): GRID_WORKER,
    ("GET", "/api/v1/taxonomy"): SUPERVISOR,
    ("GET", "/api/v1/admin/staff"): ADMIN,
    ("PATCH", "/api/v1/admin/staff/{staff_id}"): ADMIN,
    ("GET", "/api/v1/admin/invitations"): ADMIN,
    ("POST", "/api/v1/admin/invitations"): ADMIN,
    ("PATCH", "/api/v1/admin/departments/{code}"): ADMIN,
    ("POST", "/api/v1/admin/grids"): ADMIN,
    ("PATCH", "/api/v1/admin/grids/{code}"): ADMIN,
    ("POST", "/api/v1/auth/qr/{ticket}/confirm"): SUPERVISOR,
    ("GET", "/api/v1/auth/qr/{ticket}/info"): SUPERVISOR,
}

if os.environ.get(CONTEXT_ENV):  # inside the schemathesis run only
    import schemathesis

    _context = json.loads(os.environ[CONTEXT_ENV])

    def _pick(generated: object, choices: list) -> object | None:
        """A real value for some generated ones, as a function of the generated value: runs replay."""
        slot = sum(map(ord, str(generated))) % (len(choices) + 1)
        return choices[slot] if slot < len(choices) else None

    @schemathesis.hook("map_path_parameters")
    def real_records(context, path_parameters):
        if not path_parameters:
            return path_parameters
        if "number" in path_parameters:
            path_parameters["number"] = _pick(path_parameters["number"], _context["numbers"]) or \
                path_parameters["number"]
        if "staff_id" in path_parameters:
            path_parameters["staff_id"] = _pick(path_parameters["staff_id"], [_context["spare_staff"]]) or \
                path_parameters["staff_id"]
        return path_parameters

    def _hostile(case) -> None:
        """A quarter of the calls, chosen as a function of the generated case (runs replay), get what the schema
        cannot express: periods at the ends of the calendar, and JSON nested deeper than the server's stack
        under an Idempotency-Key (its fingerprint parses the body before the handler does)."""
        slot = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
        if slot % 4:
            return
        path = case.operation.path
        if path in PERIOD_PATHS:
            case.query = {**(case.query or {}), "period": HOSTILE_PERIODS[slot // 4 % len(HOSTILE_PERIODS)]}
        elif path == "/api/v1/stats/report/{filename}":
            case.path_parameters = {"filename": f"{('0001-01', '9999-12')[slot // 4 % 2]}.{('xlsx', 'csv')[slot % 2]}"}
        elif case.operation.method.upper() == "POST" and path.startswith("/api/v1/orders/"):
            depth = DEEP_NESTING[slot // 4 % len(DEEP_NESTING)]
            case.body = b'{"note": ' + b"[" * depth + b"]" * depth + b"}"
            case.media_type = "application/json"
            case.headers = {**(case.headers or {}), "Idempotency-Key": f"deep-{slot}"}

    @schemathesis.hook
    def before_call(context, case, **kwargs):
        caller = CALLER.get((case.operation.method.upper(), case.operation.path), ADMIN)
        staff_id = (case.path_parameters or {}).get("staff_id")
        if staff_id in _context["protected_staff"]:
            case.path_parameters["staff_id"] = _context["spare_staff"]  # the callers stay active all run
        _hostile(case)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_context['tokens'][caller]}"}


async def _township(api) -> list[str]:
    """Orders in the states the operations care about, of the department and the resident that call them."""
    from orders import models
    from orders.services import Actor

    lamp = [await api.submit(f"村口第{i}盏路灯坏了", openid=RESIDENT) for i in range(5)]
    unsure = await api.submit("两口子吵架", openid=RESIDENT, location={"latitude": 28.641, "longitude": 104.406})
    clerk = Actor.of_staff(await models.Staff.get(openid=JIANSHE))
    for number in lamp[1:4]:
        await api.orders.accept(number, clerk)
    await api.orders.request_extension(lamp[2], clerk, 2, "等配件")
    await api.orders.resolve(lamp[3], clerk, "已修好")
    for i, text in enumerate(["三组路灯坏了,晚上一片黑", "三组的路灯不亮好几天了", "路灯坏了晚上看不见"]):
        await api.submit(text, openid=f"oHotspot{i}", location={"latitude": 28.641, "longitude": 104.406})  # 热点
    return [*lamp, unsure]


async def _schemathesis(base: str, context: dict, workdir: Path) -> tuple[int, str]:
    executable = Path(sys.executable).with_name("schemathesis")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.test_schemathesis", CONTEXT_ENV: json.dumps(context),
           "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        str(executable), "run", f"{base}/docs/openapi.json",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--include-path-regex", "^/api/v1/",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20261124",
        "--workers", "1",
        "--no-shrink",
        "--suppress-health-check", "all",
        "--request-timeout", "10",
        "--report", "junit", "--report-junit-path", str(workdir / "schemathesis.xml"),
        cwd=workdir,  # its caches stay out of the repository
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, output.decode("utf-8", "replace")


async def test_no_generated_request_gets_a_server_error(settings, store, fake_classifier, trained_router, tmp_path):
    from classifiers.similarity import TextSimilarity
    from orders import models

    async with serve_api(settings, store, fake_classifier, similarity=TextSimilarity(trained_router)) as api:
        numbers = await _township(api)
        hotspots = (await api.get(SUPERVISOR, "/stats/hotspots")).json()["hotspots"]
        assert [spot["count"] for spot in hotspots] == [3]  # the list's schema is checked with an item in it
        callers = sorted(set(CALLER.values()))
        tokens = {openid: (await api.login(openid))["access_token"] for openid in callers}
        spare = await models.Staff.create(name="测试用人员", role="supervisor")
        protected = list(await models.Staff.filter(openid__in=callers).values_list("id", flat=True))
        context = {"tokens": tokens, "numbers": numbers, "spare_staff": spare.id, "protected_staff": protected}
        spec = (await api.client.get("/docs/openapi.json")).json()
        operations = {(m.upper(), p) for p, ops in spec["paths"].items() if p.startswith("/api/v1/") for m in ops}
        assert set(CALLER) <= operations

        returncode, output = await _schemathesis(api.base, context, tmp_path)
        assert returncode == 0, output[-8000:]
        assert "generated" in output and "passed" in output, output[-2000:]
        assert await models.Staff.filter(id__in=protected, active=True).count() == len(protected)
