"""API authentication (its own module: DRF imports it while rest_framework.views is loading)."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication


class TokenOrBearerAuthentication(TokenAuthentication):
    """`Authorization: Token <t>` or `Authorization: Bearer <t>` (what the evalai CLI sends)."""

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = request.META.get("HTTP_AUTHORIZATION", "")
        for keyword in ("Token", "Bearer"):
            if header[: len(keyword) + 1].lower() == f"{keyword.lower()} ":
                self.keyword = keyword
                return super().authenticate(request)
        return None

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return "Token"
