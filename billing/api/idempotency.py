"""
Idempotent writes. A POST with an ``Idempotency-Key`` header runs in one transaction that
first inserts the key's row, then does the work and stores the response on the row before
committing:

- the same key, the same request (method, path, body) again: the stored response is
  replayed (status and body, with ``Idempotent-Replayed: true``) and nothing is done again;
- the same key with another request: 422, nothing done;
- two requests with one key at once: the second's INSERT … ON CONFLICT DO NOTHING waits on
  the unique index (company, key) until the first commits, inserts nothing, and replays —
  one effect, by the database's constraint, not a check-then-act (SQLite writes one
  transaction at a time);
- the same key from another token of the company: 422 (an answer is replayed only to the
  token that got it, so a replay never skips a role check);
- a request that fails with a 5xx, or that its token may not make (401, 403), rolls back,
  key included: it may be retried, by another token too.

Keys are kept ``FOLIO_IDEMPOTENCY_HOURS`` (24 by default, the least the API promises);
``manage.py prune_idempotency_keys`` deletes older ones.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from . import problems
from .models import IdempotencyKey
from .tokens import token_of

PREFIX = "/api/"
HEADER = "HTTP_IDEMPOTENCY_KEY"
KEY_MAX_LENGTH = 255
# Answers about the token rather than the request: not kept under the key.
NOT_KEPT = {401, 403}


def retention():
    return timedelta(hours=getattr(settings, "FOLIO_IDEMPOTENCY_HOURS", 24))


def prune(now=None) -> int:
    """Delete the keys older than the retention; returns how many."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def claim(token, key, method, path, body_hash):
    """
    Insert the key's row; its id, or None when the key is taken. One statement, no
    savepoint: ``ON CONFLICT DO NOTHING`` waits, on PostgreSQL, for a concurrent transaction
    that inserted the same (company, key) to end, then skips the row if it committed.
    """
    table = IdempotencyKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, token_id, key, method, path, body_hash, "
            "content_type, body, created_at) VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s) "
            "ON CONFLICT (company_id, key) DO NOTHING RETURNING id",
            [token.company_id, token.pk, key, method, path, body_hash, b"", timezone.now()])
        row = cursor.fetchone()
    return row[0] if row else None


class IdempotencyMiddleware:
    """Runs each API POST with an Idempotency-Key in one transaction, replaying by key."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST" or not request.path.startswith(PREFIX):
            return self.get_response(request)
        key = request.META.get(HEADER)
        token = token_of(request) if key is not None else None
        if key is not None and request.method == "POST" and token is not None:
            if not key.strip() or len(key) > KEY_MAX_LENGTH or not key.isascii() \
                    or not key.isprintable():
                return problems.problem_response(
                    422, _("An Idempotency-Key is 1 to %(max)d printable ASCII characters, "
                           "such as a UUID.") % {"max": KEY_MAX_LENGTH},
                    kind="idempotency-key")
            return self.once(request, token, key)
        # Without a key, each operation's own transaction (the services', the draft
        # writer's) is the request's: no outer one to pay for.
        return self.get_response(request)

    def once(self, request, token, key):
        try:
            body_hash = hashlib.sha256(request.body).hexdigest()
        except RequestDataTooBig:
            return problems.too_big()
        with transaction.atomic():
            row_id = claim(token, key, request.method, request.path[:500], body_hash)
            if row_id is None:
                # Another request with this key committed (or we waited for it to): replay.
                return self.replay(request, token, key, body_hash)
            response = self.get_response(request)
            if response.status_code >= 500 or response.status_code in NOT_KEPT \
                    or getattr(response, "streaming", False):
                transaction.set_rollback(True)
                return response
            IdempotencyKey.objects.filter(pk=row_id).update(
                status=response.status_code, content_type=response.get("Content-Type", ""),
                body=response.content)
        return response

    def replay(self, request, token, key, body_hash):
        row = IdempotencyKey.objects.filter(company_id=token.company_id, key=key).first()
        if row is None or row.status is None:  # pragma: no cover - rolled back meanwhile
            return problems.problem_response(
                409, _("A request with this Idempotency-Key is still in progress; try again "
                       "in a moment."), kind="idempotency-in-progress")
        if row.token_id != token.pk:
            return problems.problem_response(
                422, _("This Idempotency-Key was used by another token of the company: use a "
                       "new key."), kind="idempotency-key-reused")
        if (row.method, row.path, row.body_hash) != (request.method, request.path[:500],
                                                      body_hash):
            return problems.problem_response(
                422, _("This Idempotency-Key was used for another request (%(method)s "
                       "%(path)s with another body): use a new key for a new request.") % {
                    "method": row.method, "path": row.path}, kind="idempotency-key-reused")
        response = HttpResponse(bytes(row.body), status=row.status,
                                content_type=row.content_type or None)
        response["Idempotent-Replayed"] = "true"
        return response
