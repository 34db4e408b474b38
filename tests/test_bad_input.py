"""
A catalogue of malformed and hostile input, through the forms, the admin and the commands.
Each case gets a clear message and leaves the database exactly as it was.
"""

import io
from datetime import timedelta
from decimal import Decimal

import pypdf
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, Membership
from billing.services import mark_paid, record_payment, reverse_payment, send_document
from counters.models import NumberingSettings, Sequence

from .factories import ClientFactory, InvoiceFactory, MembershipFactory, UserFactory
from .test_isolation import snapshot

pytestmark = pytest.mark.django_db


def lines(*rows, total=None):
    data = {"lines-TOTAL_FORMS": str(total if total is not None else len(rows)),
            "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000"}
    for i, (description, quantity, price, rate, *category) in enumerate(rows):
        data.update({f"lines-{i}-description": description, f"lines-{i}-quantity": quantity,
                     f"lines-{i}-unit_price": price, f"lines-{i}-tax_rate": rate})
        if category:
            data[f"lines-{i}-tax_category"] = category[0]
    return data


GOOD_LINE = ("Work", "1", "100", "20")
SETTINGS = {"invoice_pattern": "INV-{YYYY}-{counter}", "credit_note_pattern":
            "CN-{YYYY}-{counter}", "padding": "4", "reset_period": "yearly",
            "fiscal_year_start": "1"}


@pytest.fixture
def world(client):
    member = MembershipFactory(role=Membership.Role.OWNER, user__is_staff=True,
                               user__is_superuser=True)
    own = ClientFactory(company=member.company)
    other_client = ClientFactory(company=member.company)
    sent = send_document(InvoiceFactory(client=own))  # 240.00
    paid = mark_paid(send_document(InvoiceFactory(client=own)))
    part_paid = send_document(InvoiceFactory(client=own))
    payment = record_payment(part_paid, amount=Decimal("40.00"), method="cash")
    reversed_payment = record_payment(part_paid, amount=Decimal("10.00"), method="cash")
    reverse_payment(reversed_payment, reason="Mistake")
    draft = InvoiceFactory(client=own)
    foreign = send_document(InvoiceFactory())
    NumberingSettings.for_company(member.company_id)
    client.force_login(member.user)
    return {"client": client, "own": own, "other_client": other_client, "sent": sent,
            "paid": paid, "draft": draft, "foreign": foreign, "company": member.company,
            "part_paid": part_paid, "payment": payment, "reversed_payment": reversed_payment}


def payment(**fields):
    return {"date": "2026-01-02", "amount": "10.00", "method": "bank_transfer",
            "reference": "", **fields}


def invoice(w, **fields):
    return {"client": w["own"].pk, "currency": "EUR", **fields}


# (case id, method, url builder, data builder, expected text)
CASES = [
    # Clients
    ("client: empty name", "client_create", lambda w: {"name": ""}, "This field is required."),
    ("client: name too long", "client_create", lambda w: {"name": "x" * 201},
     "at most 200 characters"),
    ("client: bad e-mail", "client_create", lambda w: {"name": "A", "email": "a@"},
     "Enter a valid email address."),
    ("client: VAT too long", "client_create", lambda w: {"name": "A", "vat_id": "1" * 40},
     "at most 32 characters"),
    # Invoice lines
    ("line: negative quantity", "invoice_create",
     lambda w: invoice(w, **lines(("W", "-1", "10", "20"))), "greater than or equal to 0.001"),
    ("line: zero quantity", "invoice_create",
     lambda w: invoice(w, **lines(("W", "0", "10", "20"))), "greater than or equal to 0.001"),
    ("line: quantity not a number", "invoice_create",
     lambda w: invoice(w, **lines(("W", "two", "10", "20"))), "Enter a number."),
    ("line: quantity with 4 decimals", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1.0001", "10", "20"))), "no more than 3 decimal"),
    ("line: negative price", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "-5", "20"))), "greater than or equal to 0"),
    ("line: price not a number", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "1e", "20"))), "Enter a number."),
    ("line: price beyond precision", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "123456789012", "20"))),
     "no more than 10 digits before the decimal point"),
    ("line: price with 3 decimals", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "1.005", "20"))), "no more than 2 decimal"),
    ("line: tax above 100 %", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "10", "150"))), "less than or equal to 100"),
    ("line: negative tax", "invoice_create",
     lambda w: invoice(w, **lines(("W", "1", "10", "-1"))), "greater than or equal to 0"),
    ("line: missing description", "invoice_create",
     lambda w: invoice(w, **lines(("", "1", "10", "20"))), "This field is required."),
    ("line: description too long", "invoice_create",
     lambda w: invoice(w, **lines(("x" * 501, "1", "10", "20"))), "at most 500 characters"),
    ("lines: a line with every field blanked", "invoice_create",
     lambda w: invoice(w, **lines(("", "", "", ""))), "This field is required."),
    ("lines: none at all", "invoice_create", lambda w: invoice(w, **lines()),
     "A document needs at least one line."),
    ("lines: management form missing", "invoice_create", lambda w: invoice(w),
     "(Hidden field TOTAL_FORMS) This field is required."),
    ("lines: 100,000 forms", "invoice_create",
     lambda w: invoice(w, **lines(GOOD_LINE, total=100000)), "Please submit at most 200"),
    # Invoice fields
    ("invoice: no client", "invoice_create",
     lambda w: {**invoice(w, **lines(GOOD_LINE)), "client": ""}, "This field is required."),
    ("invoice: another company's client", "invoice_create",
     lambda w: {**invoice(w, **lines(GOOD_LINE)), "client": w["foreign"].client_id},
     "Select a valid choice"),
    ("invoice: currency EURO", "invoice_create",
     lambda w: invoice(w, currency="EURO", **lines(GOOD_LINE)), "at most 3 characters"),
    ("invoice: currency 12€", "invoice_create",
     lambda w: invoice(w, currency="12€", **lines(GOOD_LINE)), "three-letter currency code"),
    ("invoice: impossible due date", "invoice_create",
     lambda w: invoice(w, due_date="2026-02-31", **lines(GOOD_LINE)), "Enter a valid date."),
    ("invoice: due date passed", "invoice_create",
     lambda w: invoice(w, due_date=(timezone.localdate() - timedelta(days=1)).isoformat(),
                       **lines(GOOD_LINE)), "cannot fall due on a day that has passed"),
    ("invoice: due date in year 9999", "invoice_create",
     lambda w: invoice(w, due_date="9999-12-31", **lines(GOOD_LINE)), "2999-12-31"),
    # Credit notes
    ("credit: another company's invoice", "credit_note_create",
     lambda w: invoice(w, invoice=w["foreign"].pk, **lines(GOOD_LINE)),
     "Select a valid choice"),
    ("credit: another client's invoice", "credit_note_create",
     lambda w: {**invoice(w, invoice=w["sent"].pk, **lines(GOOD_LINE)),
                "client": w["other_client"].pk}, "must have the same client"),
    ("credit: chosen lines, none chosen", ("invoice_credit", "sent"),
     lambda w: {"what": "lines"}, "Choose at least one line to credit."),
    # Lifecycle
    ("send: not a draft", ("invoice_send", "sent"), lambda w: {}, "already been issued"),
    ("edit: an issued invoice", ("invoice_edit", "sent"),
     lambda w: invoice(w, notes="rewritten", **lines(GOOD_LINE)), "can no longer be edited"),
    ("delete: an issued invoice", ("invoice_delete", "sent"), lambda w: {},
     "can no longer be changed or deleted"),
    ("mark paid: a draft", ("invoice_mark_paid", "draft"), lambda w: {"method": "cash"},
     "Only a sent invoice can be marked paid"),
    ("mark paid: twice", ("invoice_mark_paid", "paid"), lambda w: {"method": "cash"},
     "Only a sent invoice can be marked paid"),
    ("mark paid: no method", ("invoice_mark_paid", "sent"), lambda w: {"method": ""},
     "This field is required."),
    # Payments
    ("payment: more than is left", ("invoice_payment", "part_paid"),
     lambda w: payment(amount="200.01"), "more than what is left to pay (200.00"),
    ("payment: zero", ("invoice_payment", "part_paid"), lambda w: payment(amount="0"),
     "greater than or equal to 0.01"),
    ("payment: negative", ("invoice_payment", "part_paid"), lambda w: payment(amount="-5"),
     "greater than or equal to 0.01"),
    ("payment: over-precise", ("invoice_payment", "part_paid"),
     lambda w: payment(amount="1.005"), "no more than 2 decimal places"),
    ("payment: not a number", ("invoice_payment", "part_paid"),
     lambda w: payment(amount="ten"), "Enter a number."),
    ("payment: in the future", ("invoice_payment", "part_paid"),
     lambda w: payment(date="2999-01-01"), "cannot be dated in the future"),
    ("payment: unknown method", ("invoice_payment", "part_paid"),
     lambda w: payment(method="barter"), "Select a valid choice."),
    ("payment: reference too long", ("invoice_payment", "part_paid"),
     lambda w: payment(reference="r" * 201), "at most 200 characters"),
    ("payment: a draft", ("invoice_payment", "draft"), lambda w: payment(amount="1"),
     "Only a sent invoice can receive a payment"),
    ("payment: a paid invoice", ("invoice_payment", "paid"), lambda w: payment(amount="0.01"),
     "Only a sent invoice can receive a payment; INV-2026-0002 is Paid."),
    ("reverse: no reason", ("payment_reverse", "payment"), lambda w: {"reason": " "},
     "Say why the payment is reversed."),
    ("reverse: twice", ("payment_reverse", "reversed_payment"), lambda w: {"reason": "again"},
     "has already been reversed"),
    ("cancel: no reason", ("invoice_cancel", "sent"), lambda w: {"reason": ""},
     "Say why the invoice is cancelled."),
    ("cancel: a paid invoice", ("invoice_cancel", "paid"), lambda w: {"reason": "r"},
     "Only a sent, unpaid invoice can be cancelled"),
    ("filter: bad dates", "invoice_list", lambda w: {"date_from": "soon"},
     "Enter a valid date."),
    ("filter: client not a number", "invoice_list", lambda w: {"client": "abc"},
     "Select a valid choice"),
    ("filter: client past any id", "invoice_list", lambda w: {"client": "9" * 30},
     "Select a valid choice"),
    ("filter: unknown state", "invoice_list", lambda w: {"state": "<x>"},
     "Select a valid choice"),
    # Numbering settings
    ("settings: no {counter}", "numbering_settings",
     lambda w: {**SETTINGS, "invoice_pattern": "INV-{YYYY}"}, "must contain {counter}"),
    ("settings: unknown token", "numbering_settings",
     lambda w: {**SETTINGS, "invoice_pattern": "INV-{YEAR}-{counter}"}, "Unknown token {YEAR}"),
    ("settings: unclosed brace", "numbering_settings",
     lambda w: {**SETTINGS, "invoice_pattern": "INV-{YYYY-{counter}"},
     "A brace in the pattern is not closed."),
    ("settings: pattern too long", "numbering_settings",
     lambda w: {**SETTINGS, "invoice_pattern": "X" * 70 + "{counter}"}, "at most 64 characters"),
    ("settings: padding 13", "numbering_settings", lambda w: {**SETTINGS, "padding": "13"},
     "less than or equal to 12"),
    ("settings: padding -1", "numbering_settings", lambda w: {**SETTINGS, "padding": "-1"},
     "greater than or equal to 0"),
    ("settings: padding abc", "numbering_settings", lambda w: {**SETTINGS, "padding": "abc"},
     "Enter a whole number."),
    ("settings: monthly without {MM}", "numbering_settings",
     lambda w: {**SETTINGS, "reset_period": "monthly"}, "needs {MM}"),
    ("settings: yearly without a year", "numbering_settings",
     lambda w: {**SETTINGS, "invoice_pattern": "INV-{counter}"}, "needs {YYYY}, {YY} or {FY}"),
    ("settings: colliding patterns", "numbering_settings",
     lambda w: {**SETTINGS, "credit_note_pattern": "INV-{YYYY}-{counter}"},
     "would produce the same numbers"),
    ("settings: unknown reset", "numbering_settings",
     lambda w: {**SETTINGS, "reset_period": "weekly"}, "Select a valid choice"),
]


def resolve(w, target):
    if isinstance(target, tuple):
        name, obj = target
        return reverse(name, args=[w[obj].pk])
    return reverse(target)


@pytest.mark.parametrize("case, target, data, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_message_and_changes_nothing(world, case, target, data,
                                                            expected):
    before = snapshot()
    url = resolve(world, target)
    if target == "invoice_list":
        response = world["client"].get(url, data(world))
    else:
        response = world["client"].post(url, data(world), follow=True)
    assert response.status_code == 200, case
    assert expected in response.content.decode(), case
    assert snapshot() == before, case


def in_a_month():
    return (timezone.localdate() + timedelta(days=30)).isoformat()


# The good input at each target of the catalogue. Every case above is one of these with one
# value spoilt (or the action on an object in the wrong state): that the page accepts these
# is what makes each refusal above the spoilt value's, and its unchanged database the
# validation's, not data the page would have refused anyway.
BASELINES = [
    ("client", "client_create",
     lambda w: {"name": "A", "email": "a@example.com", "vat_id": "FR" + "1" * 30}),
    ("invoice", "invoice_create",
     lambda w: invoice(w, due_date=in_a_month(), **lines(("W", "1.001", "1.25", "100")))),
    ("credit note", "credit_note_create",
     lambda w: invoice(w, invoice=w["sent"].pk, **lines(GOOD_LINE))),
    ("credit chosen lines", ("invoice_credit", "sent"),
     lambda w: {"what": "lines", "line": [w["sent"].lines.get().pk]}),
    ("send a draft", ("invoice_send", "draft"), lambda w: {}),
    ("edit a draft", ("invoice_edit", "draft"),
     lambda w: invoice(w, notes="rewritten", **lines(GOOD_LINE))),
    ("delete a draft", ("invoice_delete", "draft"), lambda w: {}),
    ("mark paid a sent invoice", ("invoice_mark_paid", "sent"), lambda w: {"method": "cash"}),
    ("record a payment", ("invoice_payment", "part_paid"), lambda w: payment(amount="200.00")),
    ("reverse a payment", ("payment_reverse", "payment"), lambda w: {"reason": "Bounced"}),
    ("cancel a sent invoice", ("invoice_cancel", "sent"), lambda w: {"reason": "r"}),
    ("numbering settings", "numbering_settings",
     lambda w: {**SETTINGS, "padding": "12", "reset_period": "monthly",
                "invoice_pattern": "INV-{YY}{MM}-{counter}",
                "credit_note_pattern": "CN-{YYYY}{MM}-{counter}"}),
]


@pytest.mark.parametrize("case, target, data", BASELINES, ids=[b[0] for b in BASELINES])
def test_the_good_input_at_each_target_is_accepted(world, case, target, data):
    before = snapshot()
    response = world["client"].post(resolve(world, target), data(world))
    assert response.status_code == 302, (case, response.status_code)
    assert snapshot() != before, case


# --- Admin ---------------------------------------------------------------------------------

ADMIN_CASES = [
    ("next number below one issued", {"next_value": "1", "reason": "back"},
     "can only move forward"),
    ("next number without a reason", {"next_value": "50", "reason": " "},
     "This field is required."),
    ("next number not a number", {"next_value": "fifty", "reason": "r"},
     "Enter a whole number."),
]


@pytest.mark.parametrize("case, data, expected", ADMIN_CASES, ids=[c[0] for c in ADMIN_CASES])
def test_bad_input_in_the_admin(world, case, data, expected):
    sequence = Sequence.objects.get(company=world["company"])
    before = snapshot()
    response = world["client"].post(reverse("admin:counters_sequence_changelist"), {
        "action": "set_next_number_action", "_selected_action": [sequence.pk], "apply": "1",
        **data})
    assert expected in response.content.decode()
    assert snapshot() == before


def test_a_good_next_number_is_accepted_in_the_admin(world):
    """The admin cases' baseline: the same action with a good number moves the sequence."""
    sequence = Sequence.objects.get(company=world["company"])
    response = world["client"].post(reverse("admin:counters_sequence_changelist"), {
        "action": "set_next_number_action", "_selected_action": [sequence.pk], "apply": "1",
        "next_value": "50", "reason": "migration"})
    assert response.status_code == 302
    sequence.refresh_from_db()
    assert sequence.last == 49


def test_the_admin_shows_an_issued_invoice_read_only_and_a_draft_editable(world):
    def change_page(document):
        url = reverse("admin:billing_invoice_change", args=[document.pk])
        response = world["client"].get(url)
        assert response.status_code == 200
        return response.context

    issued = change_page(world["sent"])
    assert not issued["adminform"].form.fields
    assert not any(inline.has_add_permission or inline.has_change_permission
                   or inline.has_delete_permission for inline in issued["inline_admin_formsets"])
    draft = change_page(world["draft"])
    assert {"client", "notes", "currency"} <= set(draft["adminform"].form.fields)
    assert all(inline.has_change_permission for inline in draft["inline_admin_formsets"])


def test_the_admin_refuses_to_delete_an_issued_invoice_and_deletes_a_draft(world):
    def delete(document):
        url = reverse("admin:billing_invoice_delete", args=[document.pk])
        return world["client"].post(url, {"post": "yes"})

    before = snapshot()
    assert delete(world["sent"]).status_code == 403
    assert snapshot() == before
    assert delete(world["draft"]).status_code == 302
    assert not Invoice.objects.filter(pk=world["draft"].pk).exists()


def test_saving_an_issued_invoice_in_the_admin_is_refused(world):
    """The page posted back as a browser would, a rewritten note slipped in: refused, no 500."""
    url = reverse("admin:billing_invoice_change", args=[world["sent"].pk])
    page = world["client"].get(url)
    data = {"notes": "rewritten", "currency": "USD", "_save": "Save"}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value
                     for name, value in management.initial.items()})
    before = snapshot()
    response = world["client"].post(url, data, follow=True)
    assert response.status_code == 403
    assert snapshot() == before


# --- Commands ------------------------------------------------------------------------------

COMMAND_CASES = [
    ("audit_gaps", ["--period", "2026-13"], "--period takes YYYY, YYYY-MM, YYYY/MM"),
    ("audit_gaps", ["--from", "garbage"], "--from takes a date"),
    ("audit_gaps", ["--company", "No Such Ltd"], "No company 'No Such Ltd'"),
    ("audit_gaps", ["--from", "2026-05-02", "--to", "2026-05-01"], "--from is after --to"),
    ("send_drafts", ["--company", "No Such Ltd"], "No company 'No Such Ltd'."),
    ("send_drafts", ["--company", "1", "--kind", "receipt"], "invalid choice: 'receipt'"),
]


@pytest.mark.parametrize("command, args, expected", COMMAND_CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in COMMAND_CASES])
def test_bad_arguments_to_commands(world, command, args, expected):
    before = snapshot()
    with pytest.raises(CommandError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert snapshot() == before


# --- Hostile text is stored as typed and always escaped -------------------------------------

HOSTILE = '<script>alert("x")</script> <img src=x onerror=alert(1)> שלום مرحبا ‮evil'


def test_html_and_right_to_left_text_are_kept_and_escaped(world):
    client = world["client"]
    client.post(reverse("client_create"), {
        "name": HOSTILE, "email": "x@example.com", "street": HOSTILE, "city": "Lyon",
        "country": "FR", "endpoint_scheme": "0009", "endpoint_id": "55208131700018"})
    hostile = world["company"].clients.get(name=HOSTILE)
    client.post(reverse("invoice_create"), {
        "client": hostile.pk, "currency": "EUR", "notes": HOSTILE,
        **lines((HOSTILE, "1", "10", "0", "Z"))})
    document = hostile.invoices.get()
    assert document.notes == HOSTILE and document.lines.get().description == HOSTILE
    for url in (reverse("client_list"), reverse("invoice_list"),
                reverse("invoice_detail", args=[document.pk]),
                reverse("client_detail", args=[hostile.pk])):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert" in page
    sent = send_document(document)
    pdf = client.get(reverse("invoice_pdf", args=[sent.pk])).content
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert '<script>alert("x")</script>' in text  # printed as text, never interpreted
    assert sent.total == Decimal("10.00")


def test_a_wrong_password_gets_a_clear_message(client):
    UserFactory(username="someone")
    response = client.post(reverse("login"), {"username": "someone", "password": "nope"})
    assert "Please enter a correct username and password" in response.content.decode()
