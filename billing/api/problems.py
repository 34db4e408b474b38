"""
Errors as RFC 9457 problem details: ``application/problem+json`` with ``type``, ``title``,
``status`` and a ``detail`` a person can act on; a refused input also lists ``errors``, one
``{field, message}`` per problem (``field`` empty for the whole request).
"""

import json
import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as SchemaValidationError

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://folio.invalid/problems/"  # identifiers, not pages to fetch

TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large",
    422: "Unprocessable content", 500: "Internal server error", 503: "Service unavailable",
}


class Problem(Exception):
    """Raised by an endpoint: answered as a problem with ``status``."""

    def __init__(self, status, detail, *, kind=None, errors=None):
        super().__init__(detail)
        self.status, self.detail, self.kind, self.errors = status, str(detail), kind, errors


def problem_response(status, detail, *, kind=None, errors=None) -> HttpResponse:
    body = {
        "type": TYPE_BASE + (kind or str(status)),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": str(detail),
    }
    if errors is not None:
        body["errors"] = errors
    return HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)


def form_errors(*forms) -> list[dict]:
    """The errors of Django forms and formsets as ``{field, message}`` items."""
    errors = []
    for form in forms:
        if hasattr(form, "forms"):  # a formset of lines: lines[2].unit_price
            errors += [{"field": "", "message": str(m)} for m in form.non_form_errors()]
            for index, line_form in enumerate(form.forms):
                errors += [{"field": f"lines[{index}].{e['field'] or ''}".rstrip("."),
                            "message": e["message"]} for e in form_errors(line_form)]
            continue
        for field, messages in form.errors.items():
            name = "" if field == "__all__" else field
            errors += [{"field": name, "message": str(m)} for m in messages]
    return errors


def field_name(location) -> str:
    """A schema error's location as the forms name fields: ("payload", "lines", 1,
    "unit_price") is ``lines[1].unit_price``."""
    parts = list(location)
    if parts[:1] == ["payload"]:
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name


def too_big() -> HttpResponse:
    """The answer to a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    return problem_response(413, _("The request body is too large."), kind="too-large")


def validation_problem(errors, detail=None) -> Problem:
    detail = detail or "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    return Problem(422, detail, kind="validation", errors=errors)


# The services' refusals that come from a document's state, not from the input: a draft
# that cannot be credited or cancelled, an invoice already paid, a payment already
# reversed… (409, "not in a state that allows this", as the schema says).
STATE_REFUSALS = frozenset({"not_draft", "draft", "not_sent", "invoice_draft",
                            "already_reversed", "nothing_to_pay", "nothing_to_credit",
                            "paid_in_part", "has_payments"})


def install(api):
    """Answer every error of ``api`` as a problem."""

    @api.exception_handler(Problem)
    def problem(request, exc):
        return problem_response(exc.status, exc.detail, kind=exc.kind, errors=exc.errors)

    @api.exception_handler(SchemaValidationError)
    def schema_invalid(request, exc):
        errors = [{"field": field_name(e.get("loc", ())[1:]), "message": e.get("msg", "")}
                  for e in exc.errors]
        return problem_response(
            422, validation_problem(errors).detail, kind="validation", errors=errors)

    @api.exception_handler(DjangoValidationError)
    def refused(request, exc):
        # A service's refusal (not a draft, more than is left to pay…): its own words; 409
        # when it is the document's state that refuses.
        errors = [{"field": "" if f == "__all__" else f, "message": str(m)}
                  for f, messages in (exc.message_dict.items() if hasattr(exc, "error_dict")
                                      else [("", exc.messages)])
                  for m in messages]
        codes = {error.code for error in getattr(exc, "error_list", ())}
        if codes and codes <= STATE_REFUSALS:
            return problem_response(409, " ".join(exc.messages), kind="state",
                                    errors=errors)
        return problem_response(422, " ".join(exc.messages), kind="refused", errors=errors)

    @api.exception_handler(RequestDataTooBig)
    def body_too_big(request, exc):
        return too_big()

    @api.exception_handler(AuthenticationError)
    def unauthorized(request, exc):
        response = problem_response(401, _(
            "Send a valid, unrevoked API token as 'Authorization: Bearer <token>'."),
            kind="unauthorized")
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return problem_response(403, str(exc) or _("Your role does not allow this."),
                                kind="forbidden")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return problem_response(404, _("No such resource in this company."), kind="not-found")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        return problem_response(exc.status_code, str(exc))

    @api.exception_handler(Exception)
    def server_error(request, exc):
        log.exception("API request %s %s failed", request.method, request.path)
        return problem_response(500, _("Something went wrong on our side; nothing was "
                                       "changed. Please try again."), kind="server-error")
