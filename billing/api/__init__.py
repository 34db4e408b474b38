"""
Folio's REST API, ``/api/v1/`` (django-ninja): clients, invoices and credit notes, their
actions and downloads, numbering preview and audit summary, with an OpenAPI 3 schema.

- ``models``: company API tokens (``ApiToken``) and idempotency keys (``IdempotencyKey``).
- ``tokens``: making, finding and revoking tokens (the page, the command and the API).
- ``idempotency``: the middleware that makes every POST replayable with ``Idempotency-Key``.
- ``problems``: errors as RFC 9457 problem details.
- ``schemas``, ``endpoints``: what the API reads and writes, and its operations.
- ``app``: the ``NinjaAPI`` itself, mounted by ``billing.urls``.

This package is imported by ``billing.models`` for its models: keep this file light.
"""
