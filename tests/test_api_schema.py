"""
The API against its own schema: the schema is valid OpenAPI 3; whatever schemathesis sends,
the API never answers a 5xx and every answer is one the schema documents; and the isolation
matrix, generated from the schema's paths: a token of company B against every id of
company A on every operation is refused (404) and changes nothing.
"""

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.api.models import IdempotencyKey
from billing.api.tokens import create_token
from billing.models import (
    Client,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentReversal,
)
from billing.services import draft_credit_note, record_payment, send_document
from counters.models import IssuedNumber, StateEvent

from .factories import ClientFactory, CompanyFactory, CreditNoteFactory, InvoiceFactory

API = "/api/v1"
# Examples per operation: few in CI, more by hand (FOLIO_API_FUZZ_EXAMPLES=200).
EXAMPLES = int(os.environ.get("FOLIO_API_FUZZ_EXAMPLES", "6"))

schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", get_wsgi_application())


def test_the_schema_is_valid_openapi_3(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    send = spec["paths"][f"{API}/invoices/{{id}}/send"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in send["parameters"]}
    assert "application/problem+json" in send["responses"]["422"]["content"]


def a_company_with_documents():
    """A company with a client, drafts and issued documents of each kind, and a payment."""
    company = CompanyFactory()
    buyer = ClientFactory(company=company)
    draft, sent, paid_in_part = (InvoiceFactory(client=buyer) for _ in range(3))
    send_document(sent)
    send_document(paid_in_part)
    payment = record_payment(paid_in_part, amount=paid_in_part.total / 2, method="card")
    credit_draft = CreditNoteFactory(client=buyer)
    credit_sent = send_document(draft_credit_note(sent, reason="Refund"))
    return company, {
        "clients": [buyer.pk],
        "invoices": [draft.pk, sent.pk, paid_in_part.pk],
        "credit-notes": [credit_draft.pk, credit_sent.pk],
        "payments": [payment.pk],
    }


@pytest.fixture
def keep_the_test_connection():
    """
    schemathesis calls the WSGI app directly, which closes the database connection at each
    request's start and end (Django's test client unhooks that, and so do we): on
    PostgreSQL it would close the test's transaction.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzzed(db, keep_the_test_connection):
    company, _ids = a_company_with_documents()
    _row, token = create_token(company, "owner")
    return token


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_api_answers_as_its_schema_says(case, fuzzed):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzzed}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])


# --- Isolation ------------------------------------------------------------------------------

# A body each writing operation accepts (its schema's), so that what answers is the
# company's scope, not the body's validation. A new operation with a body must add one.
BODIES = {
    "update_client": {"name": "Taken over"},
    "update_invoice": {"notes": "Taken over"},
    "update_credit_note": {"notes": "Taken over"},
    "send_invoice": {"email": True},
    "send_credit_note": {"email": True},
    "credit_invoice": {"reason": "Taken over"},
    "cancel_invoice": {"reason": "Taken over"},
    "record_payment": {"amount": "1.00", "method": "cash"},
    "reverse_payment": {"reason": "Taken over"},
}
WATCHED = [Client, Invoice, InvoiceLine, CreditNote, CreditNoteLine, Payment, PaymentReversal,
           IssuedNumber, StateEvent, IdempotencyKey]


def everything():
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WATCHED}


@pytest.mark.django_db
def test_a_token_of_another_company_reaches_none_of_its_ids(client):
    company_a, ids = a_company_with_documents()
    _row, token_b = create_token(CompanyFactory(), "owner")
    spec = client.get(f"{API}/openapi.json").json()
    before = everything()
    tried = 0
    for path, operations in spec["paths"].items():
        if "{id}" not in path:
            continue
        resource = path.removeprefix(API + "/").split("/")[0]
        for method, operation in operations.items():
            has_body = "requestBody" in operation
            assert not has_body or operation["operationId"] in BODIES, (
                f"{operation['operationId']}: add a valid body to BODIES")
            body = BODIES.get(operation["operationId"])
            for pk in ids[resource]:
                url = path.replace("{id}", str(pk)).replace(
                    "{payment_id}", str(ids["payments"][0]))
                kwargs = {"content_type": "application/json",
                          "data": json.dumps(body) if body is not None else ""} \
                    if method != "get" else {}
                response = getattr(client, method)(
                    url, HTTP_AUTHORIZATION=f"Bearer {token_b}",
                    HTTP_IDEMPOTENCY_KEY=f"k-{tried}", **kwargs)
                assert response.status_code == 404, (method, url, response.content)
                assert response["Content-Type"] == "application/problem+json"
                tried += 1
    assert tried >= 40  # every operation on an id, against each of A's ids of its kind
    after = everything()
    after["IdempotencyKey"] = [k for k in after["IdempotencyKey"]
                               if k["company_id"] == company_a.pk]
    before["IdempotencyKey"] = [k for k in before["IdempotencyKey"]
                                if k["company_id"] == company_a.pk]
    assert after == before
