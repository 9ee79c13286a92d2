"""The workbench's pages as sidan serves them: one page for /m/ and /m/survey/<number>, our modules and the vendored
libraries from the repository (no CDN), nothing cached that could hold a token."""
from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.api_harness import serve_api

STATIC = Path(__file__).resolve().parents[2] / "api" / "workbench" / "static"


async def test_the_workbench_and_the_survey_page_are_one_page_from_the_repository(settings, store, fake_classifier):
    async with serve_api(settings, store, fake_classifier, demo=False) as api:
        page = await api.client.get("/m/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "no-store" in page.headers["cache-control"] and page.headers["referrer-policy"] == "no-referrer"
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from elsewhere
        survey = await api.client.get("/m/survey/YK20261203-0001")
        assert survey.status_code == 200 and survey.text == page.text
        bare = await api.client.get("/m", follow_redirects=False)
        assert bare.status_code in (301, 302, 307, 308) and bare.headers["location"].endswith("/m/")
        for asset in re.findall(r"(?:src|href)=\"(/m/assets/[^\"]+)\"", page.text):
            answer = await api.client.get(asset)
            assert answer.status_code == 200, asset
            assert answer.content == (STATIC / asset.removeprefix("/m/assets/")).read_bytes()
        module = await api.client.get("/m/assets/js/app.js")
        assert "javascript" in module.headers["content-type"]  # browsers refuse modules of another type


def test_every_vendored_file_is_recorded_with_its_version_and_licence():
    vendor = STATIC / "vendor"
    recorded = (vendor / "README.md").read_text(encoding="utf-8")
    for path in vendor.iterdir():
        if path.suffix in (".js", ".css"):
            assert f"`{path.name}`" in recorded, path.name
    for licence in ("LICENSE-vue", "LICENSE-vant"):
        assert (vendor / licence).is_file()
