import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from leaderboard.api_support import TokenThrottle

from .apiclient import assert_error, client_for
from .conftest import PASSWORD

URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # throttle counters live in the cache


def test_it_gives_the_token_for_a_name_and_password(alice):
    r = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"token": Token.objects.get(user=alice).key}
    again = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert again.json() == r.json()  # the same token until it is revoked or rotated


def test_it_says_the_same_for_a_wrong_password_and_an_unknown_user(alice):
    wrong = assert_error(APIClient().post(URL, {"username": "alice", "password": "nope"}, format="json"), 400)
    unknown = assert_error(APIClient().post(URL, {"username": "mallory", "password": "nope"}, format="json"), 400)
    assert wrong == unknown
    assert "user name or password" in wrong["error"]
    assert not Token.objects.exists()


def test_it_asks_for_both_fields(alice):
    body = assert_error(APIClient().post(URL, {"username": "alice"}, format="json"), 400)
    assert body["error"] == "password: This field is required."
    assert "password" in body["detail"]["fields"]


def test_it_accepts_token_and_bearer_headers(alice):
    assert client_for(alice, "Token").get("/api/v1/teams/").status_code == 200
    assert client_for(alice, "Bearer").get("/api/v1/teams/").status_code == 200


def test_it_refuses_a_missing_or_unknown_token(alice):
    body = assert_error(APIClient().get("/api/v1/teams/"), 401)
    assert "Authorization: Token" in body["error"]
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error(bad.get("/api/v1/teams/"), 401)


def test_it_gives_a_new_token_even_when_the_old_one_is_sent(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token revoked-long-ago")
    assert client.post(URL, {"username": "alice", "password": PASSWORD}, format="json").status_code == 200


def test_it_revokes_the_token_it_is_sent_with(alice):
    client = client_for(alice)
    r = client.delete(URL)
    assert r.status_code == 204
    assert not Token.objects.filter(user=alice).exists()
    assert_error(client.get("/api/v1/teams/"), 401)
    assert_error(APIClient().delete(URL), 401)


def test_it_throttles_requests_for_a_token(alice, monkeypatch):
    # DRF reads the rates once, at import: patch the table the throttle uses.
    monkeypatch.setitem(TokenThrottle.THROTTLE_RATES, "token", "2/min")
    for _ in range(2):
        APIClient().post(URL, {"username": "alice", "password": "guess"}, format="json")
    r = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    body = assert_error(r, 429)
    assert 0 < body["detail"]["retry_after"] <= 60
    assert r["Retry-After"] == str(body["detail"]["retry_after"])
    # Another user name from the same address has its own count.
    assert APIClient().post(URL, {"username": "bob", "password": "x"}, format="json").status_code == 400


def test_the_web_page_makes_rotates_and_revokes_the_token(client, alice):
    page = "/account/api-token/"
    assert client.get(page).status_code == 302  # log in first
    client.force_login(alice)
    r = client.get(page)
    assert r.status_code == 200 and b"Make a token" in r.content
    assert b'href="/account/api-token/"' in r.content  # the nav link

    assert client.post("/account/api-token/create/").url == page
    first = Token.objects.get(user=alice).key
    assert first.encode() in client.get(page).content
    assert client_for_key(first).get("/api/v1/teams/").status_code == 200

    client.post("/account/api-token/rotate/")
    second = Token.objects.get(user=alice).key
    assert second != first and second.encode() in client.get(page).content
    assert_error(client_for_key(first).get("/api/v1/teams/"), 401)
    assert client_for_key(second).get("/api/v1/teams/").status_code == 200

    client.post("/account/api-token/revoke/")
    assert not Token.objects.filter(user=alice).exists()
    assert_error(client_for_key(second).get("/api/v1/teams/"), 401)
    assert client.get("/account/api-token/revoke/").status_code == 405  # POST only


def client_for_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
