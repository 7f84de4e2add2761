"""A real browser for tests: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.servers import missing

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags chromium tries to reach Google's hosts, refused on this network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_browser() -> None:
    """Skip without playwright or chromium; fail instead where servers are required (CI)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing("the playwright package is not installed")
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")


@asynccontextmanager
async def open_page(
    url: str, *, width: int = 1280, height: int = 800
) -> AsyncIterator[tuple[Any, list[str]]]:
    """A page at `url` (a window `width` x `height` CSS pixels) and the JavaScript errors it
    raised (checked by the caller)."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            yield page, errors
        finally:
            await browser.close()
