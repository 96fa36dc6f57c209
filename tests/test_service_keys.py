"""API keys and web sessions of the studio: hashed revocable keys (`lipdub keys`), LIPDUB_TOKENS as the
truth about the keys it seeds, sessions that logout and revocation end, the CSRF check of cookie
requests, the security headers, the sign-in rate limit and the job store's file mode.

The apps run with no workers (nothing is dubbed); th2 is uploaded (probed only) where a source is needed.
"""

from __future__ import annotations

import os
import stat

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from service_helpers import TOKENS, TOKENS_ENV, auth, upload  # noqa: E402

CLIP = "th2_retalking_face1.mp4"
OWN = {"Origin": "http://testserver"}  # TestClient's base URL: the page's own origin


def _app(data_dir, **kw):
    from lipdub.service.app import create_app
    from lipdub.service.settings import ServiceSettings

    kw.setdefault("tokens", TOKENS_ENV)
    return create_app(ServiceSettings(data_dir=data_dir, embedded_workers=0, **kw))


def _login(client, token, headers=OWN):
    return client.post("/login", data={"token": token}, headers=headers, follow_redirects=False)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, testdata):
    data = tmp_path_factory.mktemp("keys") / "data"
    app = _app(data)
    with TestClient(app) as client:
        src = upload(client, testdata / CLIP)
        assert src.status_code == 201, src.text
        job = client.post("/jobs", json={"source_id": src.json()["id"], "language": "es"}, headers=auth())
        assert job.status_code == 201, job.text
        yield {"app": app, "data": data, "source": src.json()["id"], "job": job.json()["id"]}


def _cli(*args):
    from typer.testing import CliRunner

    from lipdub.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_keys_add_list_revoke_and_the_key_is_never_stored(studio):
    client, data = TestClient(studio["app"]), studio["data"]
    r = _cli("keys", "add", "carol", "--label", "carol's laptop", "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("lipdub_") and len(key) > 40
    assert client.get("/jobs", headers=_bearer(key)).json() == []  # a new user: sees nothing of alice's
    listing = _cli("keys", "list", "--data-dir", str(data))
    assert listing.exit_code == 0 and "carol" in listing.stdout and key not in listing.stdout
    row = next(line for line in listing.stdout.splitlines() if "carol" in line)
    key_id = row.split()[1]
    assert "never" not in row  # last used: the request above
    stored = b"".join(p.read_bytes() for p in data.glob("lipdub.db*"))
    for secret in (key, *TOKENS.values()):
        assert secret.encode() not in stored  # only digests are kept
    r = _cli("keys", "revoke", key_id, "--data-dir", str(data))
    assert r.exit_code == 0, r.output
    refused = client.get("/jobs", headers=_bearer(key))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]["message"]
    assert "revoked" in _cli("keys", "list", "--data-dir", str(data)).stdout
    assert _cli("keys", "revoke", "nosuchkey", "--data-dir", str(data)).exit_code == 2
    assert _cli("keys", "list", "--data-dir", str(data / "missing")).exit_code == 2


def test_a_key_removed_from_the_environment_stops_working(tmp_path):
    from lipdub.service.keys import KeyStore

    data = tmp_path / "data"
    both = TestClient(_app(data))
    assert both.get("/jobs", headers=auth("bob")).status_code == 200
    alice_only = TestClient(_app(data, tokens=f"alice={TOKENS['alice']}"))  # the server restarted without bob
    r = alice_only.get("/jobs", headers=auth("bob"))
    assert r.status_code == 401
    assert alice_only.get("/jobs", headers=auth("alice")).status_code == 200
    nobody = TestClient(_app(data, tokens=None))
    assert nobody.get("/jobs", headers=auth("alice")).status_code == 401
    # named again, a key the variable had removed comes back; one revoked by hand does not
    store = nobody.app.state.keys
    alice = next(k for k in store.keys() if k.user == "alice")
    store.revoke(alice.id)
    again = TestClient(_app(data))
    assert again.get("/jobs", headers=auth("bob")).status_code == 200
    assert again.get("/jobs", headers=auth("alice")).status_code == 401
    assert {k.user: k.state for k in KeyStore(again.app.state.db).keys()} == {"alice": "revoked", "bob": "active"}


def test_logout_ends_the_session_and_the_cookie_is_not_the_key(studio):
    client = TestClient(studio["app"])
    r = _login(client, TOKENS["alice"])
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = client.cookies.get("lipdub_session")
    assert cookie and cookie != TOKENS["alice"] and TOKENS["alice"] not in r.headers["set-cookie"]
    assert client.get("/jobs").status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 200
    assert TestClient(studio["app"]).get("/jobs", headers=_bearer(cookie)).status_code == 401  # a session is no API key
    r = client.post("/logout", headers=OWN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    replay = TestClient(studio["app"], cookies={"lipdub_session": cookie})  # the cookie kept after logout
    assert replay.get("/jobs").status_code == 401
    assert replay.get("/", follow_redirects=False).headers["location"] == "/login"
    assert TestClient(studio["app"], cookies={"lipdub_token": TOKENS["alice"]}).get("/jobs").status_code == 401  # the old cookie


def test_revoking_a_key_ends_its_sessions(studio):
    keys = studio["app"].state.keys
    key, info = keys.add("dave")
    client = TestClient(studio["app"])
    assert _login(client, key).status_code == 303 and client.get("/jobs").status_code == 200
    keys.revoke(info.id)
    assert client.get("/jobs").status_code == 401
    assert _login(client, key).status_code == 401


@pytest.mark.parametrize("limit", [{"session_ttl_s": 1.0}, {"session_idle_s": 1.0}], ids=["lifetime", "idle"])
def test_a_session_expires_on_the_server(tmp_path, limit, monkeypatch):
    """The server refuses the session itself (the cookie is replayed after the browser would drop it).
    The server's clock is the test's, so a slow machine cannot make the session expire early."""
    from datetime import timedelta

    from lipdub.service import keys as keys_module

    start = keys_module.utcnow()
    clock = {"now": start}
    monkeypatch.setattr(keys_module, "utcnow", lambda: clock["now"])
    app = _app(tmp_path / "data", **limit)
    client = TestClient(app)
    assert _login(client, TOKENS["alice"]).status_code == 303
    cookie = client.cookies.get("lipdub_session")
    assert client.get("/jobs").status_code == 200
    clock["now"] = start + timedelta(seconds=0.8)
    assert TestClient(app, cookies={"lipdub_session": cookie}).get("/jobs").status_code == 200
    clock["now"] = start + timedelta(seconds=0.8 + 1.2)
    assert TestClient(app, cookies={"lipdub_session": cookie}).get("/jobs").status_code == 401


def test_cross_site_state_changes_with_the_cookie_are_refused(studio, testdata):
    client, jid = TestClient(studio["app"]), studio["job"]
    assert _login(client, TOKENS["alice"]).status_code == 303
    url = f"/jobs/{jid}/render"
    attacks = {"text/plain, own origin": {**OWN, "Content-Type": "text/plain"},
               "form, own origin": {**OWN, "Content-Type": "application/x-www-form-urlencoded"},
               "json, foreign origin": {"Origin": "http://evil.example", "Content-Type": "application/json"},
               "text/plain, foreign origin": {"Origin": "http://evil.example", "Content-Type": "text/plain"},
               "json, foreign referer": {"Referer": "http://evil.example/page", "Content-Type": "application/json"},
               "json, no origin": {"Content-Type": "application/json"}}
    for name, headers in attacks.items():
        r = client.post(url, content=b"{}", headers=headers)
        assert r.status_code == (415 if "own" in name else 403), (name, r.status_code, r.text)
    r = client.post(f"/jobs/{jid}/cancel", content=b"x", headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert r.status_code == 403
    assert client.get(f"/jobs/{jid}").json()["state"] == "queued"  # nothing changed
    # the page's own requests pass the check (the job is queued: render answers 409 from the route itself)
    r = client.post(url, json={}, headers=OWN)
    assert r.status_code == 409 and "queued" in r.json()["detail"]["message"]
    r = client.post(url, json={}, headers={"Referer": "http://testserver/ui/jobs/x"})
    assert r.status_code == 409
    up = client.post("/sources", params={"filename": "a.mp4"}, content=(testdata / CLIP).read_bytes(),
                     headers={**OWN, "Content-Type": "text/plain"})
    assert up.status_code == 415
    up = client.post("/sources", params={"filename": "a.mp4"}, content=(testdata / CLIP).read_bytes(),
                     headers={**OWN, "Content-Type": "application/octet-stream"})
    assert up.status_code == 201
    # an API client (Authorization header, no cookie) is not subject to the cookie's check
    api = TestClient(studio["app"])
    assert api.post(url, content=b"", headers={**auth(), "Content-Type": "text/plain"}).status_code == 409
    # signing in from another site is refused too
    assert _login(TestClient(studio["app"]), TOKENS["alice"], headers={"Origin": "http://evil.example"}).status_code == 403


def test_security_headers_and_cookie_attributes(studio, tmp_path):
    client = TestClient(studio["app"])
    for r in (client.get("/login"), client.get("/health"), client.get("/jobs"), client.get("/jobs", headers=auth())):
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in client.get("/health").headers
    cookie = _login(client, TOKENS["alice"]).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    page = client.get("/").text
    assert "<script>" not in page and " style=" not in page  # nothing inline: the policy allows none
    https = TestClient(_app(tmp_path / "data", https=True), base_url="https://studio.test")
    r = https.post("/login", data={"token": TOKENS["alice"]}, headers={"Origin": "https://studio.test"}, follow_redirects=False)
    assert r.status_code == 303 and "; secure" in r.headers["set-cookie"].lower()
    assert https.get("/health").headers["strict-transport-security"].startswith("max-age=")


def test_sign_in_attempts_are_rate_limited_per_client(tmp_path):
    app = _app(tmp_path / "data", login_rate_limit="3/minute")
    client = TestClient(app, client=("203.0.113.7", 40000))
    for _ in range(3):
        assert _login(client, "wrong-key-123").status_code == 401
    r = _login(client, TOKENS["alice"])  # even the right key, until the window has passed
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "too many" in r.text
    other = TestClient(app, client=("203.0.113.8", 40000))
    assert _login(other, TOKENS["alice"]).status_code == 303


def test_the_job_store_is_private(studio, tmp_path):
    db = studio["data"] / "lipdub.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for side in studio["data"].glob("lipdub.db-*"):  # SQLite's WAL files take the database's mode
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    from lipdub.service.db import Database

    loose = tmp_path / "old.db"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    Database(f"sqlite:///{loose}")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600  # an older, readable store is tightened


def test_campaign_languages_are_checked_at_request_time(studio):
    from lipdub.backends.translate.apertium import installed_modes

    client, sid = TestClient(studio["app"]), studio["source"]
    reached = {m.split("_")[0].split("-")[-1] for m in installed_modes()}  # ISO 639-3 or -1 codes of the targets
    unreachable = next(c for c, c3 in (("de", "deu"), ("ja", "jpn"), ("fi", "fin"), ("zh", "zho")) if c not in reached and c3 not in reached)
    before = client.get("/jobs", headers=auth()).json()
    r = client.post("/campaigns", json={"source_id": sid, "languages": ["es", unreachable]}, headers=auth())
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert unreachable in detail["message"] and "es" not in detail["message"].split("reaches")[1].split("from")[0]
    assert "installed apertium pairs" in detail["hint"] and "en->es" in detail["hint"]
    r = client.post("/campaigns", json={"source_id": sid, "languages": ["ca"], "options": {"source_language": "es"}}, headers=auth())
    assert r.status_code == 422 and "ca" in r.json()["detail"]["message"] and "from es" in r.json()["detail"]["message"]
    r = client.post("/jobs", json={"source_id": sid, "language": unreachable}, headers=auth())
    assert r.status_code == 422 and unreachable in r.json()["detail"]["message"]
    assert client.get("/jobs", headers=auth()).json() == before  # nothing was created
    r = client.post("/campaigns", json={"source_id": sid, "languages": ["es", "ca"]}, headers=auth())
    assert r.status_code == 201
