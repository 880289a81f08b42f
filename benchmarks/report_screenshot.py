"""Open a study's report.html in headless Chromium, as a reader would, and check that it makes
no request outside the file (every plot is inlined; Chromium's own background requests, those
it makes for an empty page too, are set aside) and that every image is a PNG that decodes; save
a screenshot beside it.

Run: python benchmarks/report_screenshot.py benchmarks/results/harden
     (needs Debian's chromium: apt-get install -y chromium; prints a JSON summary, writes
     report_screenshot.png and report_screenshot.json into the folder, exits 1 on a failure)
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
QUIET_BROWSER = (
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-default-apps", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-spell-checking",
    "--disable-features=Translate,OptimizationHints,MediaRouter,SpellCheck,SignInProfileCreation",
)  # fmt: skip
"""Chromium's own background traffic off, so that any request left is the page's."""


def chromium() -> str:
    """The headless browser on this machine."""
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no chromium found: apt-get install -y chromium")


def inline_images(page: str) -> list[tuple[int, int]]:
    """The size of each ``<img>``: every one must be an inlined PNG that decodes."""
    sizes = []
    for source in re.findall(r'<img[^>]*\ssrc="([^"]+)"', page):
        if not source.startswith("data:image/png;base64,"):
            raise ValueError(f"image not inlined: {source[:80]}")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.verify()
        sizes.append(image.size)
    return sizes


def requested_urls(net_log: Path) -> list[str]:
    """Every URL Chromium's network stack was asked for while it showed the page."""
    text = net_log.read_text(errors="replace")
    return sorted(set(re.findall(r'"url":"([^"]+)"', text)))


def _open(page: Path, scratch: Path, screenshot: Path) -> set[str]:
    """Show ``page`` in headless Chromium; the URLs (scheme, host, path) it requested."""
    net_log = scratch / f"{page.stem}.net.json"
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *QUIET_BROWSER,
         f"--user-data-dir={scratch / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--log-net-log={net_log}", "--window-size=1400,2400", f"--screenshot={screenshot}",
         page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return {url.split("?")[0] for url in requested_urls(net_log) if not url.startswith(("file:", "data:"))}


def check(folder: Path) -> dict[str, object]:
    """Inlined images that decode, and no request the page made beyond what Chromium makes for
    an empty page (its own services), with a screenshot."""
    report = folder / "report.html"
    sizes = inline_images(report.read_text())
    screenshot = folder / "report_screenshot.png"
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        blank = scratch / "blank.html"
        blank.write_text("<!DOCTYPE html><title>blank</title>")
        browser_own = _open(blank, scratch, scratch / "blank.png")
        external = sorted(_open(report, scratch, screenshot) - browser_own)
    shot = Image.open(screenshot)
    summary = {
        "report": str(report),
        "images": len(sizes),
        "image_sizes": sizes,
        "external_requests": external,
        "browser_own_requests_ignored": sorted(browser_own),
        "screenshot": str(screenshot),
        "screenshot_size": list(shot.size),
        "passed": bool(sizes) and not external,
    }
    (folder / "report_screenshot.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    result = check(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/harden"))
    print(json.dumps(result, indent=1))
    sys.exit(0 if result["passed"] else 1)
