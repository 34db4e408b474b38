"""
The API (django-ninja), mounted at ``/api/v1/`` by ``billing.urls``: its schema at
``/api/v1/openapi.json``, its docs page at ``/api/v1/docs``.
"""

from ninja import NinjaAPI
from ninja.security import HttpBearer

from . import problems
from .endpoints import router
from .tokens import token_of

# What any operation may answer besides its success, each as a problem (RFC 9457).
ERRORS = {
    "401": "No valid token.",
    "403": "The token's role does not allow this.",
    "404": "No such resource in the token's company.",
    "422": "The input was refused; `detail` says why, `errors` lists each field's problem.",
}
UNREADABLE = {"400": "The body could not be read as JSON.",
              "413": "The body is larger than the server accepts."}
CONFLICT = {
    "409": "The document is not in a state that allows this (already issued, not sent, a "
           "draft has no e-invoice…), or a request with the same Idempotency-Key is still "
           "in progress.",
}


class TokenAuth(HttpBearer):
    """``Authorization: Bearer folio_…``: the request acts in the token's company, with its
    role."""

    def authenticate(self, request, token):
        return token_of(request)


class FolioAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation):
        return operation.view_func.__name__  # send_invoice, list_credit_notes…

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        return document_problems(schema)


def document_problems(schema):
    """Every operation's errors, as ``application/problem+json``; POSTs take an
    Idempotency-Key."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = {
        "type": "object", "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        },
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = {str(k): v for k, v in operation.get("responses", {}).items()}
            operation["responses"] = responses
            conflicts = method != "get" or path.endswith(("/pdf", "/ubl", "/cii", "/facturx"))
            errors = {**ERRORS, **(CONFLICT if conflicts else {}),
                      **(UNREADABLE if "requestBody" in operation else {})}
            for status, description in errors.items():
                responses.setdefault(status, {"description": description})
                responses[status]["content"] = problem
            for status, response in responses.items():
                if status == "204":
                    response.pop("content", None)
            if method == "post":
                operation.setdefault("parameters", []).append({
                    "in": "header", "name": "Idempotency-Key", "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": "Replay the first answer to a retried request: the same "
                                   "key and body answer the same, without doing it again."})
    return schema


api = FolioAPI(
    title="Folio API", version="1", urls_namespace="api",
    description=(
        "Invoices and credit notes, numbered when they are sent. Authenticate with a company "
        "API token (`Authorization: Bearer folio_…`, made by an owner on the API tokens page "
        "or by `manage.py api_token`). Amounts are decimal strings. Errors are RFC 9457 "
        "problem details. Every POST accepts an `Idempotency-Key` header (kept 24 hours)."),
    auth=TokenAuth(), docs_url="/docs", openapi_url="/openapi.json",
)
problems.install(api)
api.add_router("", router)
