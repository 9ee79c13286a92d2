"""Headless Debian Chromium for the browser tests (the dashboard's and the workbench's), driven by Playwright with
executable_path: nothing is downloaded. Without Chromium or a Chinese font the tests skip here and fail under CI."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest

from tests.support import IN_CI

ARGS = ["--no-sandbox", "--disable-gpu", "--lang=zh-CN"]


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def chromium_or_skip() -> str:
    path = os.environ.get("SIDAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _missing("headless Chromium not found (apt-get install chromium fonts-noto-cjk, or set SIDAN_CHROMIUM)")
    return path


def cjk_font_or_skip() -> None:
    """The pages must render in Chinese fonts: without one a screenshot would show boxes."""
    fc_list = shutil.which("fc-list")
    found = fc_list and subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    if not found:
        _missing("no Chinese font installed (apt-get install fonts-noto-cjk)")


def browser_or_skip() -> str:
    """Chromium's path once both checks pass: call it before starting servers or databases."""
    executable = chromium_or_skip()
    cjk_font_or_skip()
    return executable


@contextlib.asynccontextmanager
async def chromium(executable: str):
    """A launched headless Chromium (a Playwright Browser), closed on the way out."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()
