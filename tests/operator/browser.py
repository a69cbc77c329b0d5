"""The real Prefect UI in headless Chromium: render a page, keep a screenshot, read its text.

The UI is a JavaScript app: ``--virtual-time-budget`` lets its scripts, timers and API calls
run before the DOM is dumped. A page still missing an expected text is rendered again with a
larger budget (a busy machine answers the UI's API calls slowly).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

INSTALL = "apt-get install -y chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000", "--hide-scrollbars")


def chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    found = next((path for path in map(shutil.which, names) if path), None)
    if found is None:
        pytest.fail(f"headless Chromium is needed for the UI test: {INSTALL}")
    return found


def render(url: str, screenshot: Path, profile: Path, budget_ms: int) -> str:
    """The page's visible text after ``budget_ms`` of virtual time; a PNG at ``screenshot``."""
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={screenshot}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
    return visible_text(done.stdout)


def visible_text(dom: str) -> str:
    """Text of an HTML document without scripts, styles and tags, whitespace collapsed.

    >>> visible_text("<p>Run <b>done</b></p><script>var x = 1</script>")
    'Run done'
    """
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())


def shows(url: str, expected: Sequence[str], screenshot: Path, profile: Path,
          attempts: int = 3) -> str:
    """Render ``url`` until its text holds every ``expected`` string; fail naming the missing."""
    text = ""
    for attempt in range(1, attempts + 1):
        text = render(url, screenshot, profile, budget_ms=15_000 * attempt)
        missing = [s for s in expected if s not in text]
        if not missing:
            return text
    pytest.fail(f"{url} does not show {missing}; it shows: {text[:2000]}")
