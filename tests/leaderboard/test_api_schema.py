"""The OpenAPI description generates without warnings, validates, and is served with an offline docs page."""

import json

from django.core.management import call_command


def test_it_generates_a_valid_schema_without_warnings(tmp_path, db):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/v1/auth/token/", "/api/v1/challenges/", "/api/v1/phases/{phase_id}/submissions/",
                 "/api/v1/phases/{phase_id}/leaderboard.csv", "/api/v1/uploads/{upload_id}/complete/"):
        assert f"{path}:" in text


def test_it_serves_the_schema(client, db):
    r = client.get("/api/schema/?format=json")
    assert r.status_code == 200
    schema = json.loads(r.content)
    assert schema["info"]["title"] == "EgoMask leaderboard API"
    operation = schema["paths"]["/api/v1/phases/{phase_id}/submissions/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"201", "400", "401", "403", "413", "429"} <= set(operation["responses"])
    assert all(path.startswith("/api/v1/") for path in schema["paths"])  # the evalai-compatible routes are not ours
    assert client.get("/api/schema/").content.startswith(b"openapi: 3")


def test_it_serves_the_docs_page_without_a_cdn(client, db):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
