"""Who is signed in: the bearer token in an HttpOnly cookie, a CSRF token for every form.

The workbench never checks the token's signature (it may not hold the key): the API does, on
every call. It reads the token's claims only to choose the pages and links to show."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from starlette.requests import Request
from starlette.responses import Response

TOKEN_COOKIE = "strata_token"
CSRF_COOKIE = "strata_csrf"
LANGUAGE_COOKIE = "strata_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
LANGUAGES = ("zh-CN", "en")


@dataclass(frozen=True)
class User:
    token: str
    role: str
    subject: str
    rm_id: str | None
    branch_id: str | None
    expires_at: int

    @property
    def head_office(self) -> bool:
        return self.role in ("analyst", "admin")

    @property
    def seconds_left(self) -> int:
        return max(0, self.expires_at - int(time.time()))


def read_claims(token: str) -> User | None:
    """The token's claims, unverified; None for what is not a token or has expired."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": True})
    except jwt.PyJWTError:
        return None
    role, exp = claims.get("role"), claims.get("exp")
    if not isinstance(role, str) or not isinstance(exp, int):
        return None
    return User(token, role, str(claims.get("sub", role)), claims.get("rm_id"), claims.get("branch_id"), exp)


def signed_in(request: Request) -> User | None:
    token = request.cookies.get(TOKEN_COOKIE)
    return read_claims(token) if token else None


def language_of(request: Request, default: str) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else default


def keep_token(response: Response, user: User, secure: bool) -> None:
    """The token as an HttpOnly, SameSite=Strict cookie that ends when the token does."""
    response.set_cookie(TOKEN_COOKIE, user.token, max_age=user.seconds_left, httponly=True,
                        samesite="strict", secure=secure, path="/")


def forget_token(response: Response, secure: bool) -> None:
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (double-submit: a cookie, and the same value in each form)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def keep_csrf(request: Request, response: Response, secure: bool) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", secure=secure, path="/")


def csrf_valid(request: Request, submitted: str | None) -> bool:
    expected = request.cookies.get(CSRF_COOKIE)
    given = submitted or request.headers.get(CSRF_HEADER)
    return bool(expected and given) and hmac.compare_digest(expected, given)
