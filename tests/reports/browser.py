"""Headless Chromium for tests: render a page from disk, read back what a person would see, take a screenshot.

Chromium comes from Debian's ``chromium`` package. :func:`chromium` installs it when it is missing and the
tests run as root with apt; otherwise the tests that need it skip, saying why.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)));
window.addEventListener('load', () => {
  const box = el => { const r = el.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  const docs = [...document.querySelectorAll('.doc')].map(d => {
    const copy = d.cloneNode(true); copy.querySelector('.id')?.remove();
    return {id: d.dataset.docId, text: copy.textContent, marks: [...d.querySelectorAll('mark')].map(m => m.textContent)};
  });
  const probe = {
    svgs: [...document.querySelectorAll('svg.chart, svg.multiple')].map(s => ({
      size: box(s), shapes: s.querySelectorAll('rect.bar, polyline, circle').length})),
    cards: [...document.querySelectorAll('details.card')].map(c => c.dataset.latent),
    docs: docs,
    scripts: document.querySelectorAll('script').length,
    resources: performance.getEntriesByType('resource').map(r => r.name),
    errors: window.__errors,
  };
  document.body.setAttribute('data-probe', JSON.stringify(probe));
});
</script>"""


def chromium() -> str:
    """The Chromium binary, installed with apt if missing (root only); skips the test if it cannot be had."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [apt, "install", "-y", "-q", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900, check=False).returncode != 0:
            subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600, check=False)
            subprocess.run(install, env=env, capture_output=True, timeout=900, check=False)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("headless Chromium is not installed and could not be installed (apt-get install chromium, as root)")


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout, check=False)


def probe(page: Path, work: Path) -> dict[str, Any]:
    """What the page shows once loaded in Chromium: chart sizes, cards, documents with their marks, scripts,
    network loads and JavaScript errors (gathered by a probe script added to a copy of the page)."""
    text = page.read_text(encoding="utf-8")
    probed = work / f"probed-{page.name}"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    out = _run(["--virtual-time-budget=3000", "--dump-dom", probed.as_uri()])
    found = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert found, f"Chromium printed no probe result; stderr: {out.stderr[-2000:]}"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def screenshot(page: Path, target: Path) -> Path:
    """A PNG of the page as Chromium draws it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    out = _run([f"--screenshot={target}", "--window-size=1280,1800", "--hide-scrollbars", page.as_uri()])
    assert target.is_file() and target.stat().st_size > 0, out.stderr[-2000:]
    return target
