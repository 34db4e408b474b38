"""
API tokens: ``folio_<prefix>_<secret>``. The prefix (8 hex digits, unique) finds the row; the
SHA-256 of the whole token, compared in constant time, proves it. Only the hash is stored,
so a token is shown once, when it is made.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import ApiToken

SCHEME = "folio"
# last_used_at is written at most this often per token: a busy script is not a write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(company, role, *, name="", user=None) -> tuple[ApiToken, str]:
    """A new token of ``company`` with ``role``: (its row, the token to show once)."""
    for _attempt in range(5):
        prefix = secrets.token_hex(4)
        token = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(
                    company=company, role=role, name=name.strip(), prefix=prefix,
                    secret_hash=_digest(token),
                    created_by=user if user is not None and user.is_authenticated else None)
        except IntegrityError:  # the prefix exists already (1 in 4 billion): draw again
            continue
        return row, token
    raise RuntimeError("Could not draw a free token prefix.")


def find_token(token: str) -> ApiToken | None:
    """The active token ``token`` is, or None (unknown, malformed, revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != SCHEME or len(parts[1]) != 8:
        return None
    row = (ApiToken.objects.select_related("company", "created_by")
           .filter(prefix=parts[1], revoked_at__isnull=True).first())
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(token)):
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def bearer_token(request) -> str | None:
    """The token of ``Authorization: Bearer …``, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_of(request) -> ApiToken | None:
    """The request's active token, looked up once per request."""
    if not hasattr(request, "_api_token"):
        value = bearer_token(request)
        request._api_token = find_token(value) if value else None
    return request._api_token


def revoke(token: ApiToken):
    """Revoke ``token`` (once: a revoked token keeps its first revocation time)."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
