"""The inspector page shows what anyone may send (MessageIDs, actions, client ids quoted in faults): every value is
escaped, so a request carrying markup shows it as text and runs nothing — checked in a real headless Chromium."""

import os
import shutil

import httpx
import pytest

from iemk_etl.emulator import inspector
from iemk_etl.emulator.server import INSPECTOR_PATH, REGISTRY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import query as xds_query

# Each one sets window.__xss if it ever runs; the <b> prefix defeated the page's old "already markup" shortcut.
MESSAGE_ID = "<b><script>window.__xss='message-id'</script></b>"
ACTION = "urn:x\"><img src=x onerror=\"window.__xss='action'\">"
CLIENT = "'><svg onload=alert('client')><script>window.__xss='client'</script>"


def _post(url: str, message_id: str, action: str, client: str) -> int:
    addressing = soap.Addressing(message_id, action, to=url + REGISTRY_PATH, reply_to=soap.ANONYMOUS)
    envelope = soap.build_envelope(xds_query.build_request(xds_query.DocumentQuery(mo_oid="1.2.3")), addressing,
                                   client)
    return httpx.post(url + REGISTRY_PATH, content=soap.to_bytes(envelope),
                      headers={"Content-Type": soap.CONTENT_TYPE}, timeout=10).status_code


def _chromium() -> str:
    found = os.environ.get("IEMK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium here (Debian package chromium; .ci/run installs it): the browser test cannot run")
    return found


def test_every_value_is_escaped_in_the_markup():
    rows = [{"received_at": "2026-12-01 10:00:00", "service": "<i>svc</i>", "action": ACTION,
             "message_id": MESSAGE_ID, "verdict": "<b onclick=x>fault", "detail": CLIENT}]
    page = inspector.render(rows, {"<script>k</script>": 1})
    for tag in ("<script", "<img", "<svg", "<i>", "<b onclick"):
        assert tag not in page
    assert "&lt;b&gt;&lt;script&gt;window.__xss=&#x27;message-id&#x27;&lt;/script&gt;&lt;/b&gt;" in page
    assert "urn:x&quot;&gt;&lt;img" in page


def test_a_request_full_of_markup_runs_nothing_in_a_browser_and_shows_literally(fresh_dsn):
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    config = EmulatorConfig(known_clients=frozenset({"registered-system"}), require_signature=False)
    with EmulatorServer(config, fresh_dsn) as emulator:
        assert _post(emulator.url, MESSAGE_ID, ACTION, "registered-system") == 400      # unknown action: a fault
        assert _post(emulator.url, "urn:uuid:m-2", xds_query.ACTION, CLIENT) == 400     # unknown client: a fault
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            try:
                page = browser.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(emulator.url + INSPECTOR_PATH, wait_until="load", timeout=20_000)
                page.wait_for_timeout(300)                      # an onerror of a broken image fires after load
                ran = page.evaluate("() => window.__xss === undefined ? null : String(window.__xss)")
                injected = page.evaluate("() => document.querySelectorAll('table script, table img, table svg')"
                                         ".length")
                text = page.inner_text("table")
            finally:
                browser.close()
    assert ran is None and dialogs == [] and injected == 0
    assert MESSAGE_ID in text and ACTION in text
    assert f"информационная система [{CLIENT}] не зарегистрирована в ЕГИСЗ" in text
