"""Bearer tokens: a JWT signed with the configured key, carrying a role and an RM or branch id.

Roles: ``rm`` (sees only customers assigned to them), ``branch_manager`` (only the branch's),
``analyst`` (all, PII masked) and ``admin`` (all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Problem

Role = Literal["rm", "branch_manager", "analyst", "admin"]
ROLES: tuple[str, ...] = ("rm", "branch_manager", "analyst", "admin")


@dataclass(frozen=True)
class Principal:
    role: str
    subject: str
    rm_id: str | None = None
    branch_id: str | None = None

    @property
    def sees_everyone(self) -> bool:
        return self.role in ("admin", "analyst")


def issue_token(secret: str, role: str, *, rm_id: str | None = None, branch_id: str | None = None,
                ttl_minutes: int = 720, issuer: str = "strata", algorithm: str = "HS256",
                subject: str | None = None) -> str:
    """A signed token for ``role``; an ``rm`` needs ``rm_id``, a ``branch_manager`` ``branch_id``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "rm" and not rm_id:
        raise ValueError("an rm token needs an RM id")
    if role == "branch_manager" and not branch_id:
        raise ValueError("a branch_manager token needs a branch id")
    now = datetime.now(timezone.utc)
    claims = {
        "iss": issuer,
        "sub": subject or rm_id or branch_id or role,
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=ttl_minutes),
    }
    if rm_id:
        claims["rm_id"] = rm_id
    if branch_id:
        claims["branch_id"] = branch_id
    return jwt.encode(claims, secret, algorithm=algorithm)


def decode_token(token: str, secret: str, *, issuer: str = "strata", algorithm: str = "HS256") -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[algorithm], issuer=issuer,
                            options={"require": ["exp", "iat", "role", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise Problem(401, "Token expired", "The bearer token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Problem(401, "Invalid token", f"The bearer token is not valid: {exc}.") from exc
    role = claims.get("role")
    if role not in ROLES:
        raise Problem(401, "Invalid token", "The token carries no known role.")
    if role == "rm" and not claims.get("rm_id"):
        raise Problem(401, "Invalid token", "An rm token must carry rm_id.")
    if role == "branch_manager" and not claims.get("branch_id"):
        raise Problem(401, "Invalid token", "A branch_manager token must carry branch_id.")
    return Principal(role, claims["sub"], claims.get("rm_id"), claims.get("branch_id"))


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 problem+json without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Unauthorized", "Send Authorization: Bearer <token>.",
                      headers={"WWW-Authenticate": "Bearer"})
    auth = request.app.state.settings.auth
    return decode_token(credentials.credentials, auth.secret.get_secret_value(),
                        issuer=auth.issuer, algorithm=auth.algorithm)


def require_roles(*roles: str):
    """A dependency that lets only ``roles`` through (403 otherwise)."""

    async def _check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "Forbidden", f"Role {principal.role} may not do this.")
        return principal

    return _check


def may_see_pii(principal: Principal, unmasked_roles: list[str]) -> bool:
    return principal.role in unmasked_roles


def mask_id_number(value: str | None) -> str | None:
    """``360102198807150023`` -> ``3601**********0023``."""
    if not value:
        return value
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """``13800000000`` -> ``138****0000``."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
