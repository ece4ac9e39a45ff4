"""`make email-preview`: render the demo's email HTML in headless Chromium to a PNG, as a mail client would
show it on a phone-width screen, and return the text a reader sees (for the rendering test)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

# As root, in a closed network: no sandbox, and none of Chromium's background connections (they would fail).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(html: str, png: Path | None = None, width: int = 420) -> str:
    """Lay the HTML out in Chromium; optionally save a full-page screenshot. Returns the rendered text."""
    from playwright.sync_api import sync_playwright  # dev dependency: only previews and tests need it

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            # No network: the email must not depend on remote images or styles.
            page.route("**/*", lambda route: route.abort())
            page.set_content(html, wait_until="load")
            if png is not None:
                png.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(png), full_page=True)
            return page.inner_text("body")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.preview", description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, nargs="?", help="an email HTML body (default: the newest in out/)")
    parser.add_argument("--png", type=Path, default=Path("docs/email-preview.png"))
    parser.add_argument("--width", type=int, default=420)
    args = parser.parse_args(argv)
    html_path = args.html or max(Path("out").glob("*.html"), key=lambda p: p.stat().st_mtime, default=None)
    if html_path is None:
        print("no email HTML found; run `make demo` first", file=sys.stderr)
        return 2
    render(html_path.read_text(encoding="utf-8"), args.png, args.width)
    print(f"{html_path} -> {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
