"""A client of the leaderboard's REST API (/api/v1/) for the `egomask` server commands; no Django here.

The server answers every error as {"error": "<sentence>", "detail": {...}}; the client turns it
into RemoteError(status, message, detail), and a server it cannot reach into Unreachable (both in
scoring/cli/exits.py, with the exit code each one means).

Retries: calls that are safe to repeat (GETs, part PUTs, abort) are retried with exponential
backoff on connection errors, timeouts and 5xx answers, and on 429 throttles that name a short
Retry-After. A submission is sent with an Idempotency-Key (one per upload; the completion of a large
upload is keyed by the upload itself), so those are retried like the rest: a retry whose first try did
arrive gets the same submission back, never a second one. Other calls that create something (upload
start, token) are retried only when the connection was never made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests
import urllib3

from .config import normalize_server
from .exits import RemoteError, Unreachable

Json = dict[str, Any]
Progress = Callable[[int], None]  # called with the number of bytes sent since the last call (negative: rewind)

TIMEOUT = (10.0, 300.0)  # connect, read: a server may take a while to assemble and verify a large upload
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # longer throttles are reported, not waited out


def error_from_response(response: requests.Response) -> RemoteError:
    """The RemoteError for a failed answer, in the server's words when it used the error shape."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        return RemoteError(response.status_code, body["error"], detail)
    if isinstance(body, dict) and isinstance(body.get("detail"), str):  # DRF's default shape
        return RemoteError(response.status_code, body["detail"])
    reason = response.reason or "error"
    return RemoteError(response.status_code, f"The server answered {response.status_code} {reason} "
                                             f"for {response.request.method} {response.url}.")


# --- request bodies that report progress --------------------------------------------------------


class _ProgressBody:
    """Bytes handed to requests as a file-like body, reporting progress as blocks are read to be sent.

    Only the bytes in `counted` are reported (the file inside a multipart body, whose form fields
    and boundaries are not part of the file), so the progress of a whole upload adds up to the
    file's size exactly, and what has been reported is never more than that.
    """

    def __init__(self, data: bytes, progress: Progress | None, counted: range | None = None) -> None:
        self._data = memoryview(data)
        self._position = 0
        self._progress = progress
        self._counted = counted if counted is not None else range(len(data))
        self._reported = 0

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        """The next block of the body (all that is left when size is negative), as http.client asks for it."""
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._position + size)
        block = self._data[self._position:end].tobytes()
        self._position = end
        self._report()
        return block

    def rewind(self) -> None:
        """Back to the start, taking back the progress reported so far (for a retry)."""
        self._position = 0
        self._report()

    def _report(self) -> None:
        if self._progress is None:
            return
        counted = min(max(0, self._position - self._counted.start), len(self._counted))
        if counted != self._reported:
            self._progress(counted - self._reported)
            self._reported = counted


def multipart_body(fields: Mapping[str, str], file_field: str, filename: str,
                   data: bytes) -> tuple[bytes, str, range]:
    """A multipart/form-data body, its Content-Type, and where the file's bytes are in it.

    The file goes last, as browsers send it.
    """
    boundary = f"egomask-{uuid.uuid4().hex}"
    safe_name = filename.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        chunks.append(value.encode() + b"\r\n")
    chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
                  "Content-Type: application/zip\r\n\r\n".encode())
    start = sum(map(len, chunks))
    chunks.extend([data, f"\r\n--{boundary}--\r\n".encode()])
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}", range(start, start + len(data))


# --- the client --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UploadTicket:
    """The server's answer to starting a large upload."""

    id: str
    parts: tuple[tuple[int, str], ...]  # (part number, absolute URL), in order
    direct_to_s3: bool
    complete_url: str
    abort_url: str


@dataclasses.dataclass(frozen=True)
class MethodFields:
    """How the submission is shown on the leaderboard."""

    method_name: str
    method_description: str = ""
    method_url: str = ""
    code_url: str = ""
    is_public: bool = True

    def as_json(self) -> Json:
        """The fields as the JSON endpoints take them."""
        return dataclasses.asdict(self)

    def as_form(self) -> dict[str, str]:
        """The fields as form values (multipart submit): is_public as "true"/"false"."""
        return {**{k: str(v) for k, v in self.as_json().items() if k != "is_public"},
                "is_public": "true" if self.is_public else "false"}


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


def _unreachable(exc: requests.RequestException, url: str) -> Unreachable:
    if isinstance(exc, requests.Timeout):
        return Unreachable(f"The server did not answer in time ({url}).")
    return Unreachable(f"Cannot reach the server at {url}: {type(exc).__name__}.")


class Client:
    """One method per endpoint of /api/v1/ that the CLI uses."""

    def __init__(self, server: str, token: str | None = None, *, attempts: int = 4, backoff: float = 0.5,
                 timeout: tuple[float, float] = TIMEOUT, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.server = normalize_server(server)
        self.token = token
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "egomask-cli"
        self._sleep = sleep

    # plumbing

    def url(self, path: str) -> str:
        """An absolute URL for an API path ("phases/3/") or for a URL the server handed out."""
        if path.startswith(("http://", "https://", "/")):
            return urljoin(self.server + "/", path)
        return f"{self.server}/api/v1/{path}"

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers

    def _pause(self, attempt: int, response: requests.Response | None = None) -> None:
        wait = self.backoff * 2**attempt
        if response is not None and response.headers.get("Retry-After", "").isdigit():
            wait = max(wait, float(response.headers["Retry-After"]))
        self._sleep(min(wait, MAX_RETRY_AFTER))

    def _send(self, method: str, url: str, *, idempotent: bool, auth: bool = True,
              on_retry: Callable[[], None] | None = None, **kwargs: Any) -> requests.Response:
        """Send, retrying what is safe to retry; returns a 2xx answer or raises RemoteError."""
        headers = {**self._headers(auth), **kwargs.pop("headers", {})}
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            if attempt and on_retry is not None:
                on_retry()
            try:
                response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if last or not (idempotent or _never_sent(exc)):
                    raise _unreachable(exc, url) from None
                self._pause(attempt)
                continue
            if response.ok:
                return response
            retry_after = response.headers.get("Retry-After", "")
            # A throttle says wait a little; a used quota (X-Quota-Resets-At) is reported, never waited out.
            throttled = (response.status_code == 429 and retry_after.isdigit()
                         and float(retry_after) <= MAX_RETRY_AFTER and "X-Quota-Resets-At" not in response.headers)
            if not last and idempotent and (response.status_code in RETRY_STATUSES or throttled):
                self._pause(attempt, response)
                continue
            raise error_from_response(response)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _json(self, method: str, path: str, *, idempotent: bool, auth: bool = True, **kwargs: Any) -> Any:
        url = self.url(path)
        response = self._send(method, url, idempotent=idempotent, auth=auth, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RemoteError(response.status_code, f"The server's answer to {method} {url} is not JSON; "
                                                    "is this an EgoMask leaderboard?") from None

    # endpoints

    def obtain_token(self, username: str, password: str) -> str:
        """POST auth/token/: a token for these credentials."""
        body = self._json("POST", "auth/token/", idempotent=False, auth=False,
                          json={"username": username, "password": password})
        if not isinstance(body, dict) or not body.get("token"):
            raise RemoteError(200, "The server's answer has no token.")
        return str(body["token"])

    def challenges(self) -> list[Json]:
        """GET challenges/: the published challenges, each with its phases."""
        return list(self._json("GET", "challenges/", idempotent=True) or [])

    def phase(self, phase_id: int) -> Json:
        """GET phases/<id>/: dates, is_open, and the quota left for the caller's team (null without one)."""
        return dict(self._json("GET", f"phases/{phase_id}/", idempotent=True))

    def submission(self, submission_id: int) -> Json:
        """GET submissions/<id>/: status, failure message, problems, warnings, scores."""
        return dict(self._json("GET", f"submissions/{submission_id}/", idempotent=True))

    def receipt(self, submission_id: int) -> Json:
        """GET submissions/<id>/receipt/: the signed receipt of the submission's latest scoring."""
        return dict(self._json("GET", f"submissions/{submission_id}/receipt/", idempotent=True))

    def leaderboard(self, phase_id: int, split: str | None = None) -> Json:
        """GET phases/<id>/leaderboard/: one board (the server's default split without `split`)."""
        params = {"split": split} if split else None
        return dict(self._json("GET", f"phases/{phase_id}/leaderboard/", idempotent=True, params=params))

    def submit(self, phase_id: int, filename: str, data: bytes, method: MethodFields,
               progress: Progress | None = None) -> Json:
        """POST phases/<id>/submissions/ with the whole file (multipart): the submission."""
        body, content_type, file_bytes = multipart_body(method.as_form(), "file", filename, data)
        stream = _ProgressBody(body, progress, counted=file_bytes)
        # One key for this upload and all its retries: the server answers a repeat with the first submission.
        headers = {"Content-Type": content_type, "Idempotency-Key": str(uuid.uuid4())}
        return dict(self._json("POST", f"phases/{phase_id}/submissions/", idempotent=True, data=stream,
                               headers=headers, on_retry=stream.rewind))

    def upload_start(self, phase_id: int, *, filename: str, size: int, parts: int,
                     method: MethodFields | None = None) -> UploadTicket:
        """POST phases/<id>/uploads/: an upload in `parts` parts, each with the URL to PUT it to.

        The method fields, if given, are checked now (they are sent again on completion), so a bad
        name or URL is refused before any part is sent."""
        fields = {k: v for k, v in method.as_json().items() if k != "is_public"} if method else {}
        body = self._json("POST", f"phases/{phase_id}/uploads/", idempotent=False,
                          json={"filename": filename, "size": size, "parts": parts, **fields})
        upload_id = str(body["id"])
        targets = tuple(sorted((int(p["part_number"]), self.url(str(p["url"]))) for p in body["parts"]))
        return UploadTicket(
            id=upload_id, parts=targets, direct_to_s3=bool(body.get("direct_to_s3")),
            complete_url=self.url(str(body.get("complete_url") or f"uploads/{upload_id}/complete/")),
            abort_url=self.url(str(body.get("abort_url") or f"uploads/{upload_id}/abort/")),
        )

    def upload_part(self, url: str, data: bytes, progress: Progress | None = None) -> str:
        """PUT one part to its URL (which carries its own credentials): the part's ETag."""
        stream = _ProgressBody(data, progress)
        response = self._send("PUT", url, idempotent=True, auth=False, data=stream, on_retry=stream.rewind,
                              headers={"Content-Length": str(len(data))})
        etag = response.headers.get("ETag")
        if not etag:
            raise RemoteError(response.status_code, f"The answer to part upload {url.split('?')[0]} has no ETag.")
        return etag

    def upload_complete(self, ticket: UploadTicket, *, sha256: str, etags: Mapping[int, str],
                        method: MethodFields) -> Json:
        """POST uploads/<id>/complete/: the server assembles and verifies the file; the submission."""
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
        # Completing an upload twice answers its one submission: safe to retry.
        return dict(self._json("POST", ticket.complete_url, idempotent=True,
                               json={"sha256": sha256, "parts": parts, **method.as_json()}))

    def upload_abort(self, ticket: UploadTicket) -> None:
        """POST uploads/<id>/abort/: the server drops the parts; nothing is left."""
        self._json("POST", ticket.abort_url, idempotent=True)


# --- uploading a file ---------------------------------------------------------------------------


def parts_of(size: int, part_size: int) -> int:
    """How many parts of `part_size` bytes a file of `size` bytes needs (at least one, even when empty)."""
    return max(1, -(-size // part_size))


def read_parts(handle: BinaryIO, part_size: int) -> Iterator[bytes]:
    """The file's bytes, `part_size` at a time."""
    while chunk := handle.read(part_size):
        yield chunk


def upload_in_parts(client: Client, ticket: UploadTicket, path: Path, part_size: int,
                    progress: Progress | None = None,
                    before_part: Callable[[int], None] | None = None) -> tuple[str, dict[int, str]]:
    """Send the file's parts in order; returns (sha256 of the whole file, ETag per part number).

    Each part is read once (and hashed then), so a retried part does not read the file again.
    """
    digest = hashlib.sha256()
    etags: dict[int, str] = {}
    with path.open("rb") as handle:
        chunks = read_parts(handle, part_size)
        for number, url in ticket.parts:
            data = next(chunks, b"")
            digest.update(data)
            if before_part is not None:
                before_part(number)
            etags[number] = client.upload_part(url, data, progress)
        # The size was declared up front; a file that grew meanwhile is not what was validated.
        if next(chunks, b""):
            raise OSError(f"{path} changed while it was being uploaded")
    return digest.hexdigest(), etags

