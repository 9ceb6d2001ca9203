"""Helpers for the API tests: a client acting as a persona through its token, and the one error shape."""

from __future__ import annotations

from rest_framework.test import APIClient

from leaderboard.accounts.services import token_get_or_create


def client_for(user=None, keyword: str = "Token") -> APIClient:  # type: ignore[no-untyped-def]
    """An API client sending `user`'s token (anonymous without a user)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token_get_or_create(user=user).key}")
    return client


def assert_error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """The response has this status and the one error shape; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    assert isinstance(body["detail"], dict), body
    return body
