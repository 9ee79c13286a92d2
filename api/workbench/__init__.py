"""The staff workbench (工作台) at /m/: a mobile-first page app on top of /api/v1, and the residents' survey page
(/m/survey/<number>). The pages hold no data and no rule: they read tokens from the link's fragment and ask the API.
Static files (our own ES modules and the vendored Vue and Vant, static/vendor/README.md) are served from
/m/assets/. /m/auth (web authorisation) belongs to the API, not to this module."""
from __future__ import annotations

import re
from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, file, redirect

STATIC_DIR = Path(__file__).resolve().parent / "static"
ORDER_NUMBER = re.compile(r"[A-Za-z0-9-]{1,40}")
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


async def workbench_page(request: Request, number: str | None = None) -> HTTPResponse:
    """The one page; its script reads the path (/m/survey/<number>) and the fragment (#/orders/…) itself."""
    return await file(STATIC_DIR / "index.html", mime_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def workbench_root(request: Request) -> HTTPResponse:
    return redirect("/m/")


async def workbench_order(request: Request, number: str) -> HTTPResponse:
    """The link of staff notices (a path: WeChat keeps it whole) opens the order's page of the app."""
    if not ORDER_NUMBER.fullmatch(number):
        return redirect("/m/")
    return redirect(f"/m/#/orders/{number}")


def register(app: Sanic) -> None:
    app.add_route(workbench_page, "/m/", methods=["GET"], name="workbench_page", strict_slashes=True)
    app.add_route(workbench_root, "/m", methods=["GET"], name="workbench_root", strict_slashes=True)
    app.add_route(workbench_page, "/m/survey/<number:str>", methods=["GET"], name="workbench_survey")
    app.add_route(workbench_order, "/m/orders/<number:str>", methods=["GET"], name="workbench_order")
    app.static("/m/assets/", STATIC_DIR, name="workbench_static")
