"""Security of the studio API: keys, ownership, path traversal, upload size and type, served content types.

The app runs with no workers (nothing is dubbed): every refusal is checked for its status code and
for leaving nothing behind, in the data directory or outside it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from service_helpers import TOKENS, TOKENS_ENV, auth, tree, upload  # noqa: E402

CLIP = "th2_retalking_face1.mp4"
LIMIT_BYTES = 1_000_000  # th2 is 662,788 bytes: under the limit


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, testdata):
    from lipdub.service.app import create_app
    from lipdub.service.settings import ServiceSettings

    root = tmp_path_factory.mktemp("sec")
    settings = ServiceSettings(data_dir=root / "data", tokens=TOKENS_ENV, embedded_workers=0, max_upload_bytes=LIMIT_BYTES)
    with TestClient(create_app(settings)) as client:
        src = upload(client, testdata / CLIP)
        assert src.status_code == 201, src.text
        job = client.post("/jobs", json={"source_id": src.json()["id"], "language": "es"}, headers=auth())
        camp = client.post("/campaigns", json={"source_id": src.json()["id"], "languages": ["es", "ca"]}, headers=auth())
        yield {"client": client, "root": root, "data": settings.data_dir, "source": src.json()["id"],
               "job": job.json()["id"], "campaign": camp.json()["id"]}


def _protected(ctx) -> list[tuple[str, str]]:
    j, s, c = ctx["job"], ctx["source"], ctx["campaign"]
    return [("GET", "/openapi.json"), ("GET", "/sources"), ("POST", "/sources?filename=a.mp4"), ("GET", f"/sources/{s}"), ("GET", f"/sources/{s}/media"),
            ("GET", "/jobs"), ("POST", "/jobs"), ("POST", "/campaigns"), ("GET", f"/campaigns/{c}"), ("POST", f"/campaigns/{c}/cancel"), ("GET", f"/jobs/{j}"),
            ("POST", f"/jobs/{j}/cancel"), ("POST", f"/jobs/{j}/retry"), ("POST", f"/jobs/{j}/resynthesize"),
            ("POST", f"/jobs/{j}/render"), ("GET", f"/jobs/{j}/script"), ("PATCH", f"/jobs/{j}/segments/0"),
            ("GET", f"/jobs/{j}/segments/0/audio/source"), ("GET", f"/jobs/{j}/report"), ("GET", f"/jobs/{j}/download/video")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token-at-all"}, {"Authorization": "Basic YWxpY2U6eA=="},
                                     {"Cookie": "lipdub_session=not-a-session"}, {"Cookie": f"lipdub_token={TOKENS['alice']}"}],
                         ids=["no token", "wrong token", "wrong scheme", "unknown session", "key as cookie"])
def test_every_route_but_health_needs_a_token(ctx, headers):
    client = ctx["client"]
    before = tree(ctx["data"])
    for method, url in _protected(ctx):
        r = client.request(method, url, headers=headers, content=b"x" if method != "GET" else None)
        assert r.status_code == 401, (method, url, r.status_code)
    assert client.get("/health").status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 303  # the web page sends you to the login
    assert client.get(f"/ui/jobs/{ctx['job']}", follow_redirects=False).headers["location"] == "/login"
    assert tree(ctx["data"]) == before


def test_another_users_ids_are_not_found(ctx):
    client = ctx["client"]
    for method, url in _protected(ctx):
        if url in ("/openapi.json", "/sources", "/jobs", "/campaigns", "/sources?filename=a.mp4"):
            continue
        r = client.request(method, url, headers=auth("bob"), json={"text": "x"} if method == "PATCH" else None)
        assert r.status_code == 404, (method, url, r.status_code)
    # nor can bob dub alice's upload, and his listings are empty
    r = client.post("/jobs", json={"source_id": ctx["source"], "language": "es"}, headers=auth("bob"))
    assert r.status_code == 404
    assert client.get("/jobs", headers=auth("bob")).json() == []
    assert client.get("/sources", headers=auth("bob")).json() == []
    assert client.get(f"/jobs/{ctx['job']}", headers=auth("alice")).status_code == 200


@pytest.mark.parametrize("name", ["../../escape.mp4", "..\\..\\escape.mp4", "/etc/escape.mp4", "sub/dir.mp4", "..", "nul\x00.mp4"])
def test_path_traversal_filename_is_refused(ctx, testdata, name):
    client, root = ctx["client"], ctx["root"]
    before_root, before_tmp = tree(root), set(Path(tempfile.gettempdir()).iterdir())
    r = upload(client, testdata / CLIP, filename=name)
    assert r.status_code == 400, r.text
    assert tree(root) == before_root
    assert not any(p.name.startswith("escape") for p in set(Path(tempfile.gettempdir()).iterdir()) - before_tmp)
    assert not (root.parent / "escape.mp4").exists() and not Path("/etc/escape.mp4").exists()


def test_client_paths_never_reach_the_filesystem(ctx):
    client, j = ctx["client"], ctx["job"]
    for url in (f"/jobs/{j}/download/..%2F..%2Fmanifest.json", f"/jobs/{j}/download/../../../etc/passwd",
                "/jobs/..%2F..%2Fetc/download/video", f"/jobs/{j}/segments/0/audio/..%2Fmanifest.json"):
        r = client.get(url, headers=auth())
        assert r.status_code in (404, 422), (url, r.status_code)
        assert b"root:" not in r.content


def test_oversized_upload_is_refused(ctx, testdata):
    client, data = ctx["client"], ctx["data"]
    before = tree(ctx["root"])
    big = (testdata / CLIP).read_bytes() * 2  # 1.3 MB > 1 MB limit
    r = client.post("/sources", params={"filename": "big.mp4"}, content=big, headers=auth())
    assert r.status_code == 413
    # without a Content-Length (chunked): refused while streaming, the partial file removed

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = client.post("/sources", params={"filename": "big.mp4"}, content=chunks(), headers=auth())
    assert r.status_code == 413
    assert tree(ctx["root"]) == before
    assert len(list((data / "sources").iterdir())) == 1  # only the fixture's upload


def test_non_media_upload_is_refused(ctx, tmp_path):
    client = ctx["client"]
    before = tree(ctx["root"])
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is a text file with a video extension\n" * 50)
    r = upload(client, fake)
    assert r.status_code == 415 and "not a playable" in r.json()["detail"]["message"]
    assert str(ctx["data"]) not in r.text  # no server path in the answer
    empty = client.post("/sources", params={"filename": "empty.mp4"}, content=b"", headers=auth())
    assert empty.status_code == 415
    assert tree(ctx["root"]) == before


def test_media_is_served_as_its_probed_type_not_its_name(ctx, testdata):
    """An MP4 uploaded as evil.html comes back as video/mp4 with nosniff (never text/html), offered as
    evil.mp4; a WAV and an MP3 named .html as audio/wav and audio/mpeg. The stored file's name is the server's."""
    client, data = ctx["client"], ctx["data"]
    body = (testdata / CLIP).read_bytes()
    assert b"<script>" not in body
    evil = body + b"<html><script>alert(document.cookie)</script></html>"  # trailing bytes: still a playable MP4
    r = client.post("/sources", params={"filename": "evil.html"}, content=evil, headers=auth())
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert r.json()["filename"] == "evil.html"  # kept for display only
    assert [p.name for p in (data / "sources" / sid).iterdir()] == ["source.mp4"]
    media = client.get(f"/sources/{sid}/media", headers=auth())
    assert media.status_code == 200 and media.content == evil
    assert media.headers["content-type"] == "video/mp4"
    assert media.headers["x-content-type-options"] == "nosniff"
    assert "evil.mp4" in media.headers["content-disposition"] and ".html" not in media.headers["content-disposition"]
    for clip, media_type in (("th_latentsync_demo1_audio.wav", "audio/wav"), ("sp_en_de_faster_whisper_multilingual.mp3", "audio/mpeg")):
        r = client.post("/sources", params={"filename": "song.html"}, content=(testdata / clip).read_bytes(), headers=auth())
        assert r.status_code == 201, r.text
        assert client.get(f"/sources/{r.json()['id']}/media", headers=auth()).headers["content-type"] == media_type


def test_a_failed_jobs_error_names_no_server_path(ctx, testdata):
    """A job whose source vanished from the disk fails at ingest; its error, as the API shows it, names
    the file as uploaded, not where the server keeps it."""
    from lipdub.service.jobs import execute_job

    client, data = ctx["client"], ctx["data"]
    sid = upload(client, testdata / CLIP, filename="holiday clip.mp4").json()["id"]
    jid = client.post("/jobs", json={"source_id": sid, "language": "es"}, headers=auth()).json()["id"]
    for f in (data / "sources" / sid).iterdir():
        f.unlink()
    app = client.app
    assert execute_job(app.state.settings, app.state.db, jid, submit=lambda _j: None) == "failed"
    error = client.get(f"/jobs/{jid}", headers=auth()).json()["error"]
    assert "holiday clip.mp4" in error and str(data) not in error and "sources/" not in error
