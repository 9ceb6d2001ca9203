"""The CLI's HTTP client and saved login, without the leaderboard: a stdlib HTTP server plays the API.

The real API is exercised end to end in tests/leaderboard/test_cli_remote.py.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from scoring.cli.client import Client, MethodFields, error_from_response, multipart_body
from scoring.cli.config import Config, config_path, load_config, normalize_server, save_config
from scoring.cli.exits import ConfigError, RemoteError, Unreachable

Answer = tuple[int, dict[str, str], bytes]


class FakeApi:
    """Records each request (method, path, headers, body) and answers from a script, in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answers: list[Answer | Callable[[], Answer]] = []
        self.url = ""

    def json(self, status: int, body: object, **headers: str) -> None:
        self.answers.append((status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()))


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append((self.command, self.path, dict(self.headers), body))
            answer = fake.answers.pop(0) if fake.answers else (404, {}, b"")
            status, headers, payload = answer() if callable(answer) else answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def client(url: str, **kwargs: object) -> tuple[Client, list[float]]:
    pauses: list[float] = []
    return Client(url, "tok", sleep=pauses.append, **kwargs), pauses  # type: ignore[arg-type]


# --- saved login --------------------------------------------------------------------------------


def test_it_keeps_the_login_in_the_user_config_folder(tmp_path):
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}) == \
        tmp_path / "xdg" / "egomask" / "config.json"
    assert config_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "egomask" / "config.json"


def test_it_saves_the_login_readable_by_its_owner_only(tmp_path):
    env = {"HOME": str(tmp_path)}
    path = save_config(Config("https://board.example.org", "secret-token", "alice"), env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"server": "https://board.example.org", "token": "secret-token",
                                            "username": "alice"}
    # Saving again replaces the file atomically and leaves no temporary file behind.
    save_config(Config("https://board.example.org", "new-token", "alice"), env)
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]
    assert load_config(env) == Config("https://board.example.org", "new-token", "alice")


def test_it_lets_the_environment_override_the_saved_login(tmp_path):
    env = {"HOME": str(tmp_path)}
    save_config(Config("https://saved.example.org", "saved-token", "alice"), env)
    got = load_config({**env, "EGOMASK_SERVER": "http://other:8000/", "EGOMASK_TOKEN": "env-token"})
    assert (got.server, got.token) == ("http://other:8000", "env-token")
    assert load_config({"HOME": str(tmp_path / "empty")}) == Config(None, None, None)


def test_it_says_what_to_do_with_a_damaged_config(tmp_path):
    path = config_path({"HOME": str(tmp_path)})
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="egomask login"):
        load_config({"HOME": str(tmp_path)})


def test_it_accepts_only_web_addresses_for_the_server():
    assert normalize_server(" https://board.example.org/api/v1/ ") == "https://board.example.org"
    for bad in ("board.example.org", "ftp://board", "https://"):
        with pytest.raises(ConfigError, match="http"):
            normalize_server(bad)


# --- the error shape and retries --------------------------------------------------------------


def response(status: int, body: bytes, content_type: str = "application/json") -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer._content, answer.reason = status, body, "Reason"
    answer.headers["Content-Type"] = content_type
    answer.url = "http://server/api/v1/x/"
    answer.request = requests.Request("GET", answer.url).prepare()
    return answer


def test_it_reads_the_servers_error_shape():
    error = error_from_response(response(429, b'{"error": "Quota used.", "detail": {"resets_at": "T"}}'))
    assert (error.status, error.message, error.detail) == (429, "Quota used.", {"resets_at": "T"})
    assert not error.is_server_fault
    assert error_from_response(response(404, b'{"detail": "Not found."}')).message == "Not found."
    error = error_from_response(response(502, b"<html>bad gateway</html>", "text/html"))
    assert error.message == "The server answered 502 Reason for GET http://server/api/v1/x/." and error.is_server_fault


def test_it_retries_a_safe_call_on_server_errors_with_backoff(api):
    api.answers.append((503, {}, b""))
    api.answers.append((502, {}, b""))
    api.json(200, {"id": 7, "status": "finished"})
    remote, pauses = client(api.url)
    assert remote.submission(7) == {"id": 7, "status": "finished"}
    assert pauses == [0.5, 1.0]
    assert [r[:2] for r in api.requests] == [("GET", "/api/v1/submissions/7/")] * 3
    assert api.requests[0][2]["Authorization"] == "Token tok"


def test_it_waits_out_a_short_throttle_but_reports_a_quota(api):
    api.json(429, {"error": "Too many requests; try again in 3 seconds.", "detail": {"retry_after": 3}},
             **{"Retry-After": "3"})
    api.json(200, [])
    remote, pauses = client(api.url)
    assert remote.challenges() == [] and pauses == [3.0]
    # A used quota also names a Retry-After (the time to its reset); it is reported, never waited out.
    api.json(429, {"error": "Your team has used its daily quota.", "detail": {"resets_at": "2030-01-01T00:00:00Z"}},
             **{"Retry-After": "30", "X-Quota-Resets-At": "2030-01-01T00:00:00Z"})
    with pytest.raises(RemoteError, match="daily quota") as caught:
        remote.phase(1)
    assert caught.value.detail == {"resets_at": "2030-01-01T00:00:00Z"} and pauses == [3.0]


def test_it_never_repeats_a_call_that_creates_something_without_a_key(api):
    api.answers.append((502, {}, b""))
    remote, pauses = client(api.url)
    with pytest.raises(RemoteError) as caught:
        remote.upload_start(3, filename="p.zip", size=4, parts=1)
    assert caught.value.status == 502 and caught.value.is_server_fault
    assert len(api.requests) == 1 and pauses == []


def test_it_retries_a_submission_with_the_same_idempotency_key(api):
    # The first answer is lost (a 502 from a proxy); the retry carries the same key, so the server answers
    # it with the submission the first request made, if it made one.
    api.answers.append((502, {}, b""))
    api.json(200, {"id": 7, "status": "submitted"})
    remote, pauses = client(api.url)
    assert remote.submit(3, "p.zip", b"PK\x03\x04", MethodFields("m"))["id"] == 7
    keys = [headers.get("Idempotency-Key") for _, _, headers, _ in api.requests]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36 and pauses == [0.5]
    api.json(201, {"id": 8, "status": "submitted"})
    remote.submit(3, "p.zip", b"PK\x03\x04", MethodFields("m"))
    assert api.requests[-1][2]["Idempotency-Key"] != keys[0]  # a new upload, a new key


def test_it_retries_when_no_connection_could_be_made_and_then_says_so():
    remote, pauses = client(closed_port_url(), attempts=3)
    with pytest.raises(Unreachable, match="Cannot reach the server") as caught:
        remote.upload_start(1, filename="p.zip", size=10, parts=1)  # never sent: safe to try again
    assert caught.value.status == 0 and caught.value.is_server_fault
    assert pauses == [0.5, 1.0]


def test_it_says_when_a_part_answer_has_no_etag(api):
    api.answers.append((200, {}, b""))
    remote, _ = client(api.url)
    with pytest.raises(RemoteError, match="no ETag"):
        remote.upload_part(f"{api.url}/part/1", b"x")


def test_it_posts_the_file_and_method_fields_as_a_form(api):
    api.json(201, {"id": 5, "status": "submitted"})
    remote, _ = client(api.url)
    method = MethodFields("Net", method_description="ünïcode", is_public=False)
    assert remote.submit(3, 'we"ird.zip', b"PK\x03\x04data", method)["id"] == 5
    _, path, headers, body = api.requests[0]
    assert path == "/api/v1/phases/3/submissions/"
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=egomask-")
    assert 'name="is_public"\r\n\r\nfalse' in body.decode()
    assert 'name="method_description"\r\n\r\nünïcode' in body.decode()
    assert b'filename="we_ird.zip"\r\nContent-Type: application/zip\r\n\r\nPK\x03\x04data\r\n' in body


def test_it_builds_multipart_bodies_that_a_standard_parser_reads():
    from email.parser import BytesParser

    body, content_type, file_bytes = multipart_body({"method_name": "A"}, "file", "p.zip", b"\x00\x01zip")
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
             for p in message.get_payload()}
    assert parts == {"method_name": b"A", "file": b"\x00\x01zip"}
    assert body[file_bytes.start:file_bytes.stop] == b"\x00\x01zip"


def test_it_reports_the_progress_of_the_file_not_of_the_whole_form(api):
    api.json(201, {"id": 5, "status": "submitted"})
    remote, _ = client(api.url)
    data = os.urandom(200_000)
    sent: list[int] = []
    remote.submit(3, "p.zip", data, MethodFields("Net", method_description="d" * 5000), sent.append)
    body = api.requests[0][3]
    assert len(body) > len(data) + 5000  # the form fields and boundaries travel too...
    totals = list(itertools.accumulate(sent))
    assert totals[-1] == len(data)  # ...but the bar counts the file's bytes: it ends at exactly 100 %
    assert all(0 <= total <= len(data) for total in totals)
    assert len(sent) > 1  # reported as the body is sent, not in one jump at the end


def test_it_sends_parts_without_credentials_and_rewinds_progress_on_a_retry(api):
    api.answers.append((500, {}, b""))
    api.answers.append((200, {"ETag": '"abc"'}, b""))
    remote, _ = client(api.url)
    sent: list[int] = []
    data = os.urandom(300_000)
    assert remote.upload_part(f"{api.url}/part/1?sig=x", data, sent.append) == '"abc"'
    totals = list(itertools.accumulate(sent))
    assert totals[-1] == len(data) and min(sent) < 0  # the failed attempt was taken back
    assert all(0 <= total <= len(data) for total in totals)  # never past 100 %, even while retrying
    assert [r[3] for r in api.requests] == [data, data]
    assert all("Authorization" not in r[2] for r in api.requests)


def test_it_turns_server_part_urls_into_absolute_ones(api):
    api.json(201, {"id": "u1", "parts": [{"part_number": 2, "url": "/api/v1/uploads/u1/parts/2/?sig=b"},
                                         {"part_number": 1, "url": "https://s3.example.org/b/k?sig=a"}],
                   "direct_to_s3": False, "expires_at": "x", "complete_url": "/api/v1/uploads/u1/complete/"})
    remote, _ = client(api.url)
    ticket = remote.upload_start(4, filename="p.zip", size=10, parts=2)
    assert ticket.parts == ((1, "https://s3.example.org/b/k?sig=a"), (2, f"{api.url}/api/v1/uploads/u1/parts/2/?sig=b"))
    assert ticket.complete_url == f"{api.url}/api/v1/uploads/u1/complete/"
    assert ticket.abort_url == f"{api.url}/api/v1/uploads/u1/abort/"  # not in the answer: the documented path
    assert json.loads(api.requests[0][3]) == {"filename": "p.zip", "size": 10, "parts": 2}


# --- the commands, where no server is needed --------------------------------------------------


def egomask(*args: object, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, input=stdin, timeout=60)


@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("EGOMASK_") and k != "XDG_CONFIG_HOME"}
    return {**keep, "HOME": str(tmp_path / "home")}


def test_it_asks_for_a_login_before_doing_anything(home):
    done = egomask("status", "1", env=home)
    assert done.returncode == 2 and done.stderr.startswith("egomask: error: no server")
    done = egomask("status", "1", env={**home, "EGOMASK_SERVER": "http://x.invalid"})
    assert done.returncode == 2 and "not logged in" in done.stderr


def test_it_exits_3_when_the_server_cannot_be_reached(home):
    done = egomask("status", "1", env={**home, "EGOMASK_SERVER": closed_port_url(), "EGOMASK_TOKEN": "t"})
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("egomask: error: Cannot reach the server")


def test_it_logs_in_with_a_password_on_stdin(api, home):
    api.json(200, {"token": "fresh-token"})
    done = egomask("login", "--server", api.url, "--username", "alice", "--password-stdin", env=home,
                   stdin="pw with spaces\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(api.requests[0][3]) == {"username": "alice", "password": "pw with spaces"}
    path = Path(home["HOME"]) / ".config" / "egomask" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"] == "fresh-token"
    assert f"Logged in to {api.url} as alice" in done.stdout


def test_it_refuses_a_zip_the_server_would_refuse_without_sending_anything(api, home, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    env = {**home, "EGOMASK_SERVER": api.url, "EGOMASK_TOKEN": "t"}
    done = egomask("submit", bad, "--phase", "1", env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "was not uploaded: the server would refuse it" in done.stderr
    # The hint is a command a participant can run: no hidden ground truth (--gt), no API paths.
    assert f"`egomask validate --pred {bad}` runs the same checks." in done.stderr
    assert "--gt" not in done.stderr and "/api/" not in done.stderr
    assert api.requests == []
    done = egomask("submit", tmp_path, "--phase", "1", env=env)
    assert done.returncode == 2 and "is a folder" in done.stderr
    done = egomask("submit", bad, "--phase", "1", "--chunk-size", "1", env=env)
    assert done.returncode == 2 and "5 MiB is S3's smallest part" in done.stderr


OPEN_PHASE = {"id": 3, "slug": "test", "challenge": "egomask", "is_open": True, "accepts_submissions": True,
              "starts_at": None, "ends_at": None,
              "quota": {"per_day": 5, "per_day_left": 5, "total": None, "total_left": None,
                        "resets_at": "2030-01-02T00:00:00Z"}}


@pytest.mark.parametrize(("phase", "sentence"), [
    ({"is_open": False, "accepts_submissions": False, "starts_at": "2999-01-01T09:30:00+01:00"},
     "Phase egomask/test opens at 2999-01-01 08:30 UTC; nothing was uploaded (`egomask phases egomask` shows "
     "which phases are open)."),
    ({"is_open": False, "accepts_submissions": False, "ends_at": "2001-05-01T00:00:00Z"},
     "Phase egomask/test closed at 2001-05-01 00:00 UTC; nothing was uploaded"),
    ({"is_open": False, "accepts_submissions": False},
     "Phase egomask/test is not accepting submissions now; nothing was uploaded"),
    ({"quota": None},
     "You are not in a team for the challenge egomask, so nothing was uploaded; create or join a team on the "
     "website: {url}/challenges/egomask/"),
    ({"quota": {"per_day": 2, "per_day_left": 0, "total": 10, "total_left": 4, "resets_at": "2030-01-02T00:00:00Z"}},
     "Your team has used its daily quota of submissions for phase egomask/test (2 a day); nothing was uploaded, "
     "and the quota resets at 2030-01-02 00:00 UTC."),
    ({"quota": {"per_day": 2, "per_day_left": 0, "total": 10, "total_left": 0, "resets_at": "2030-01-02T00:00:00Z"}},
     "Your team has used all its submissions for phase egomask/test (10 in all); nothing was uploaded."),
])
def test_it_says_why_a_phase_takes_no_submission_before_uploading(api, home, tmp_path, tiny_predictions, phase,
                                                                    sentence):
    from .conftest import zip_dir

    path = zip_dir(tiny_predictions(), tmp_path / "p.zip")
    for large in ((), ("--large",)):
        api.json(200, {**OPEN_PHASE, **phase})
        done = egomask("submit", path, "--phase", "3", *large, env={**home, "EGOMASK_SERVER": api.url,
                                                                     "EGOMASK_TOKEN": "t"})
        assert done.returncode == 1, done.stderr
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("egomask: error: " + sentence.format(url=api.url)), done.stderr
    assert [r[:2] for r in api.requests] == [("GET", "/api/v1/phases/3/")] * 2  # one cheap request, no upload


def test_it_names_a_command_when_the_phase_does_not_exist(api, home, tmp_path, tiny_predictions):
    from .conftest import zip_dir

    api.json(404, {"error": "There is no phase 9; GET /api/v1/challenges/ lists the phases.", "detail": {}})
    done = egomask("submit", zip_dir(tiny_predictions(), tmp_path / "p.zip"), "--phase", "9",
                   env={**home, "EGOMASK_SERVER": api.url, "EGOMASK_TOKEN": "t"})
    assert done.returncode == 1
    assert done.stderr == "egomask: error: there is no phase 9 on this server; `egomask challenges` lists the phases\n"


def test_it_aborts_the_upload_when_a_part_is_refused(api, home, tmp_path, tiny_predictions):
    from .conftest import zip_dir

    path = zip_dir(tiny_predictions(), tmp_path / "p.zip")
    api.json(200, OPEN_PHASE)
    api.json(201, {"id": "u1", "parts": [{"part_number": 1, "url": "/part/1"}], "direct_to_s3": False,
                   "expires_at": "x", "complete_url": "/api/v1/uploads/u1/complete/",
                   "abort_url": "/api/v1/uploads/u1/abort/"})
    api.json(403, {"error": "This upload link is not valid or has expired; start the upload again.", "detail": {}})
    api.answers.append((204, {}, b""))
    done = egomask("submit", path, "--phase", "3", "--large", "--method-name", "M",
                   env={**home, "EGOMASK_SERVER": api.url, "EGOMASK_TOKEN": "t"})
    assert done.returncode == 1, done.stderr
    assert "egomask: error: This upload link is not valid or has expired" in done.stderr
    assert [r[:2] for r in api.requests] == [("GET", "/api/v1/phases/3/"), ("POST", "/api/v1/phases/3/uploads/"),
                                             ("PUT", "/part/1"), ("POST", "/api/v1/uploads/u1/abort/")]
    start = json.loads(api.requests[1][3])
    assert start["method_name"] == "M" and start["parts"] == 1 and start["size"] == path.stat().st_size
