"""The studio web page driven by Playwright in Debian's Chromium (/usr/bin/chromium, no browser download).

Sign in, upload th2, start a dub, watch it finish, edit one line, re-synthesize it, listen to it,
re-render, download the video, sign out (the session cookie then opens nothing). The page must run
under its Content-Security-Policy without a single violation. Screenshots of each page go to the test's temporary directory (and to
``$LIPDUB_SCREENSHOT_DIR`` when set).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")

from service_helpers import TOKENS, TOKENS_ENV, LiveServer, auth  # noqa: E402

pytestmark = pytest.mark.slow  # whole dubs of th2 (about 1.5-3 min on 2 cores)
CHROMIUM = "/usr/bin/chromium"
CLIP = "th2_retalking_face1.mp4"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _shot(page, tmp: Path, name: str) -> None:
    path = tmp / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("LIPDUB_SCREENSHOT_DIR"):
        dst = Path(os.environ["LIPDUB_SCREENSHOT_DIR"])
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dst / path.name)


def _wait_api(base: str, job_id: str, cond, timeout_s: float = 300) -> dict:
    import httpx

    t_end = time.monotonic() + timeout_s
    while True:
        job = httpx.get(f"{base}/jobs/{job_id}", headers=auth()).json()
        if cond(job):
            return job
        assert time.monotonic() < t_end, job
        time.sleep(0.5)


def _sign_out(page, base: str, job_id: str) -> None:
    """Log out from the page: the session cookie it held opens nothing any more, API or page."""
    import httpx

    session = next(c["value"] for c in page.context.cookies() if c["name"] == "lipdub_session")
    assert session != TOKENS["alice"]  # the cookie is a session of its own, not the key
    page.click("form.logout button")
    page.wait_for_url("**/login")
    assert httpx.get(f"{base}/jobs", cookies={"lipdub_session": session}).status_code == 401
    page.goto(f"{base}/ui/jobs/{job_id}")
    assert page.url.endswith("/login")


def test_dub_edit_resynthesize_download_in_the_browser(tmp_path, testdata):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: scripts/setup.sh dev installs it (apt chromium)")
    from lipdub.media.probe import probe
    from lipdub.service.app import create_app
    from lipdub.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path / "data", tokens=TOKENS_ENV, embedded_workers=1, heartbeat_s=1)
    with LiveServer(create_app(settings)) as server, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)

        page.goto(f"{server.url}/")
        assert page.url.endswith("/login")
        page.fill("#token", "wrong-token-123")
        page.click("button[type=submit]")
        assert "unknown token" in page.inner_text(".error")
        page.fill("#token", TOKENS["alice"])
        _shot(page, tmp_path, "1-login")
        page.click("button[type=submit]")
        page.wait_for_selector("#new-dub")

        page.set_input_files("#file", str(testdata / CLIP))
        page.fill("#languages", "es")
        page.select_option("#lipsync", "none")
        page.select_option("#separation", "none")
        page.select_option("#asr", "tiny.en")
        page.click("#start")
        page.wait_for_selector("#jobs-body tr[data-job]")
        page.wait_for_function("document.querySelector('#upload-status').textContent.includes('queued')")
        page.wait_for_selector("#jobs-body tr[data-state=running]", timeout=60_000)
        _shot(page, tmp_path, "2-index-running")
        job_id = page.get_attribute("#jobs-body tr[data-job]", "data-job")

        page.click(f"#jobs-body tr[data-job='{job_id}'] a")
        page.wait_for_selector("#stages .stage")
        page.wait_for_selector("#state.done", timeout=300_000)
        page.wait_for_selector("#script-body tr[data-segment]")
        page.wait_for_selector("#report table")
        _shot(page, tmp_path, "3-job-done")
        assert page.locator("#stages .stage[data-stage='render:es'][data-state=done]").count() == 1

        row = page.locator("#script-body tr[data-segment]").first
        seg_id = row.get_attribute("data-segment")
        row.locator("textarea").fill("Hola, esta línea la ha corregido una persona.")
        row.locator("[data-action=save-resynth]").click()
        job = _wait_api(server.url, job_id, lambda j: len(j["attempts"]) == 2 and j["state"] == "done")
        assert "synthesize:es" in job["attempts"][1]["ran"] and "render:es" not in job["attempts"][1]["ran"]
        page.wait_for_selector("#state.done")
        row = page.locator(f"#script-body tr[data-segment='{seg_id}']")
        assert "corregido" in row.locator("textarea").input_value()
        with page.expect_response(lambda r: f"/segments/{seg_id}/audio/dub" in r.url) as resp:
            row.locator("[data-action=play-dub]").click()
        assert resp.value.status in (200, 206) and resp.value.headers["content-type"] == "audio/wav"  # 206: the player asks for a range
        _shot(page, tmp_path, "4-job-edited")

        page.click("#btn-render")
        job = _wait_api(server.url, job_id, lambda j: len(j["attempts"]) == 3 and j["state"] == "done")
        assert "render:es" in job["attempts"][2]["ran"] and "synthesize:es" in job["attempts"][2]["skipped"]
        import httpx

        assert "corregido" in httpx.get(server.url + job["downloads"]["subtitles"], headers=auth()).text  # the edit is in the render
        page.wait_for_selector("#state.done")
        page.wait_for_selector("#downloads a[data-kind=video]")
        with page.expect_download() as dl:
            page.click("#downloads a[data-kind=video]")
        saved = tmp_path / "dub.mp4"
        dl.value.save_as(saved)
        info = probe(saved)
        assert info.has_video and abs(info.duration_s - 6.13) < 0.3
        _shot(page, tmp_path, "5-job-rerendered")
        _sign_out(page, server.url, job_id)
        assert not errors, errors
        browser.close()
