"""
The API's operations. Thin, like the pages: company data only through ``scoped``, the role
through ``billing.permissions.can``, input through the pages' forms, every change through
``billing.services``.
"""

import base64
import binascii
import json
from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from ninja.params import Path

from counters.audit import AuditScope, run_audit
from counters.models import Kind, NumberingSettings
from counters.services import preview_number, preview_settings

from .. import money, services
from ..balances import with_balances
from ..einvoice.exports import NotExportable, export
from ..forms import (
    CancelForm,
    ClientForm,
    CreditForm,
    CreditNoteForm,
    CreditNoteLineFormSet,
    InvoiceForm,
    InvoiceLineFormSet,
    PaymentForm,
    ReverseForm,
    read_plainly,
)
from ..models import Client, CreditNote, DocumentState, Invoice, Payment
from ..pdf import document_pdf, pdf_filename
from ..permissions import Action, can
from . import schemas as s
from .problems import Problem, form_errors, validation_problem

router = Router()
MAX_ID = s.MAX_ID
AUDIT_FINDINGS_SHOWN = 50
ID = Path(..., ge=1, le=MAX_ID)


# --- Helpers ------------------------------------------------------------------------------


def allow(request, action):
    """The token's role must allow ``action`` (the one rule of ``billing.permissions``)."""
    if not can(request.auth.role, action):
        raise PermissionDenied(_("This token's role (%(role)s) does not allow this.") % {
            "role": request.auth.role})


def scoped(request, model):
    """``model``'s rows of the token's company: the only way operations reach data."""
    return model.objects.filter(company_id=request.auth.company_id)


def get(request, model, pk, related=()):
    try:
        return scoped(request, model).select_related(*related).get(pk=pk)
    except model.DoesNotExist:
        raise Http404 from None


def actor(request):
    """Who the history and the ledger name for a token's action: the user who made it
    (None for a token made by ``api_token`` without ``--user``)."""
    return request.auth.created_by


def encode_cursor(pk):
    return base64.urlsafe_b64encode(f"id:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":")
        pk = int(value)
        if kind != "id" or not 0 < pk <= MAX_ID:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise validation_problem([{"field": "cursor", "message": _(
            "This cursor is not one the API gave; start again without it.")}]) from None
    return pk


def page(queryset, cursor, limit):
    """Newest first, by id: ``limit`` rows after ``cursor``, and the next cursor."""
    if cursor:
        queryset = queryset.filter(pk__lt=decode_cursor(cursor))
    rows = list(queryset.order_by("-pk")[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].pk) if more else None


# --- Output -------------------------------------------------------------------------------


CLIENT_FIELDS = ["name", "code", "email", "language", "street", "postal_code", "city",
                 "country", "vat_id", "endpoint_scheme", "endpoint_id", "reference",
                 "attach_ubl"]


def client_out(client):
    data = {name: getattr(client, name) for name in CLIENT_FIELDS}
    data["country"] = client.country.code or ""
    return {"id": client.pk, **data}


def summary(document):
    data = {
        "id": document.pk, "state": document.state, "number": document.number or None,
        "client": document.client_id, "series": document.series_id,
        "issue_date": document.issue_date,
        "due_date": document.due_date, "currency": document.currency,
        "buyer_reference": document.buyer_reference, "notes": document.notes,
        "subtotal": document.subtotal, "tax_total": document.tax_total,
        "total": document.total, "created_at": document.created_at,
        "updated_at": document.updated_at,
    }
    if isinstance(document, CreditNote):
        data.update(invoice=document.invoice_id, invoice_number=document.invoice_number,
                    reason=document.reason)
    elif hasattr(document, "open_amount_sql"):
        data["open_amount"] = money.to_cents(document.open_amount_sql)  # SQLite: "240"
    return data


def line_out(line):
    return {"id": line.pk, "position": line.position, "description": line.description,
            "quantity": line.quantity, "unit_code": line.unit_code,
            "unit_price": line.unit_price, "tax_category": line.tax_category,
            "tax_rate": line.tax_rate, "tax_exemption_reason": line.tax_exemption_reason,
            "tax_exemption_code": line.tax_exemption_code, "net_amount": line.net_amount}


def detail(document, *, just_sent=False):
    """
    The document with its lines. ``just_sent``: it was a draft a moment ago, in this
    request, so nothing has paid or credited it yet (the database allows neither on a
    draft): its open amount is its total, without asking.
    """
    data = summary(document)
    data["lines"] = [line_out(line) for line in document.lines.all()]
    data["number_preview"] = preview_number(document) if document.is_draft else None
    if isinstance(document, Invoice):
        zero = document.total - document.total
        if document.is_draft or just_sent:
            data["paid"], data["open_amount"] = zero, document.total if just_sent else zero
        else:
            paid = document.paid()
            data["paid"], data["open_amount"] = paid, document.open_amount(paid=paid)
    return data


def payment_out(payment):
    return {"id": payment.pk, "invoice": payment.invoice_id, "date": payment.date,
            "amount": payment.amount, "method": payment.method,
            "reference": payment.reference, "recorded_at": payment.recorded_at,
            "reversed": payment.is_reversed}


# --- Clients ------------------------------------------------------------------------------


@router.get("/clients", response=s.ClientPage, tags=["clients"])
def list_clients(request, cursor: str = Query(None, max_length=100),
                 limit: int = Query(25, ge=1, le=100),
                 q: str = Query(None, max_length=100, description="Part of the name.")):
    """The company's clients, newest first."""
    allow(request, Action.READ)
    clients = scoped(request, Client)
    if q:
        clients = clients.filter(name__icontains=q.replace("\x00", ""))
    rows, next_cursor = page(clients, cursor, limit)
    return {"items": [client_out(c) for c in rows], "next_cursor": next_cursor}


def _save_client(request, data, instance):
    form = ClientForm(data, instance=instance)
    if not form.is_valid():
        raise validation_problem(form_errors(form))
    client = form.save(commit=False)
    client.company_id = request.auth.company_id
    client.save()
    return client


@router.post("/clients", response={201: s.ClientOut}, tags=["clients"])
def create_client(request, payload: s.ClientIn):
    """A new client (the pages' client form checks it)."""
    allow(request, Action.CREATE)
    return Status(201, client_out(_save_client(request, payload.dict(), Client(
        company_id=request.auth.company_id))))


@router.get("/clients/{id}", response=s.ClientOut, tags=["clients"])
def read_client(request, id: int = ID):
    allow(request, Action.READ)
    return client_out(get(request, Client, id))


@router.patch("/clients/{id}", response=s.ClientOut, tags=["clients"])
def update_client(request, payload: s.ClientPatch, id: int = ID):
    """Change some of a client's fields (issued documents keep what they said)."""
    allow(request, Action.CREATE)
    client = get(request, Client, id)
    data = model_to_dict(client, fields=CLIENT_FIELDS)
    data.update(payload.dict(exclude_unset=True, exclude_none=True))
    return client_out(_save_client(request, data, client))


@router.delete("/clients/{id}", response={204: None}, tags=["clients"])
def delete_client(request, id: int = ID):
    """Delete a client entered by mistake; one with documents or recurring invoices is kept
    (409)."""
    allow(request, Action.CREATE)
    client = get(request, Client, id)
    try:
        services.delete_client(client)
    except services.ClientInUse as error:
        raise Problem(409, " ".join(error.messages), kind="client-in-use") from None
    return Status(204, None)


# --- Documents ----------------------------------------------------------------------------


class DocumentKind:
    """What the operations of one kind of document need."""

    def __init__(self, model, form, formset, fields, states):
        self.model, self.form, self.formset = model, form, formset
        self.fields, self.states = fields, states


INVOICES = DocumentKind(
    Invoice, InvoiceForm, InvoiceLineFormSet,
    ["client", "series", "due_date", "currency", "buyer_reference", "notes"],
    DocumentState.values)
CREDIT_NOTES = DocumentKind(
    CreditNote, CreditNoteForm, CreditNoteLineFormSet,
    ["client", "series", "invoice", "reason", "currency", "buyer_reference", "notes"],
    [DocumentState.DRAFT, DocumentState.SENT])
LINE_FIELDS = list(s.LineIn.model_fields)


def _lines_data(lines):
    data = {"lines-TOTAL_FORMS": str(len(lines)), "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "1000"}
    for index, line in enumerate(lines):
        for name in LINE_FIELDS:
            data[f"lines-{index}-{name}"] = line[name]
    return data


def _form_value(value):
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else value


def _save_draft(request, spec, document, fields, lines):
    """
    Write a draft from ``fields`` (the form's) and ``lines`` (all of them; None: keep the
    current ones), checked by the pages' form and line formset, in one transaction.
    """
    company = request.auth.company
    data = {name: _form_value(fields.get(name)) for name in spec.fields}
    if not data["currency"]:
        data["currency"] = document.currency if document.pk else company.currency
    form = spec.form(data, instance=document, company=company)
    formset = spec.formset(_lines_data(lines), instance=document, prefix="lines") \
        if lines is not None else None
    read_plainly(form, *([formset] if formset is not None else []))
    valid = form.is_valid()  # first: the lines are checked against its client
    if formset is not None:
        valid = formset.is_valid() and valid
    if not valid:
        raise validation_problem(form_errors(form, *([formset] if formset else [])))
    with transaction.atomic():
        document = form.save()
        if formset is not None:
            document.lines.all().delete()
            for position, line_form in enumerate(formset.kept_forms()):
                line = line_form.instance
                line.document, line.position = document, position
                line.save()
            document.update_totals()
    return document


def _draft(request, spec, pk):
    """The draft ``pk`` (locked), or a 409 when it was issued."""
    document = get(request, spec.model, pk, ("company", "client__company"))
    if not document.is_draft:
        raise Problem(409, _("%(document)s has been issued and can no longer be changed or "
                             "deleted; correct it with a credit note.") % {
            "document": document}, kind="issued")
    return document


def _list(request, spec, state, client, date_from, date_to, cursor, limit):
    allow(request, Action.READ)
    if state and state not in spec.states:
        raise validation_problem([{"field": "state", "message": _(
            "Choose one of: %(states)s.") % {"states": ", ".join(spec.states)}}])
    documents = scoped(request, spec.model)
    if state:
        documents = documents.filter(state=state)
    if client:
        documents = documents.filter(client_id=client)
    if date_from:
        documents = documents.filter(issue_date__gte=date_from)
    if date_to:
        documents = documents.filter(issue_date__lte=date_to)
    if spec.model is Invoice:
        documents = with_balances(documents)
    rows, next_cursor = page(documents, cursor, limit)
    return {"items": [summary(d) for d in rows], "next_cursor": next_cursor}


def _create(request, spec, payload):
    allow(request, Action.CREATE)
    data = payload.dict()
    lines = data.pop("lines")
    document = _save_draft(request, spec, spec.model(company=request.auth.company), data,
                           lines)
    return Status(201, detail(document))


def _update(request, spec, pk, payload):
    allow(request, Action.CREATE)
    document = _draft(request, spec, pk)
    changes = payload.dict(exclude_unset=True)
    changes.pop("lines", None)
    # Each line whole, its defaults included (exclude_unset would drop them).
    lines = [line.dict() for line in payload.lines] if payload.lines is not None else None
    fields = {name: getattr(document, f"{name}_id" if name in ("client", "series", "invoice")
                            else name)
              for name in spec.fields}
    fields.update(changes)
    return detail(_save_draft(request, spec, document, fields, lines))


def _delete(request, spec, pk):
    allow(request, Action.CREATE)
    with transaction.atomic():
        _draft(request, spec, pk).delete()
    return Status(204, None)


def _send_options(request):
    """The send's body, optional (a bare POST sends without e-mail): ``SendIn``."""
    if not request.body.strip():
        return s.SendIn()
    try:
        options = json.loads(request.body)
    except ValueError:
        raise validation_problem([{"field": "", "message": _("The body is not JSON.")}]) \
            from None
    if not isinstance(options, dict):
        raise validation_problem([{"field": "", "message": _(
            "The body is a JSON object, such as {\"email\": true}, or nothing.")}])
    try:
        return s.SendIn.model_validate(options)
    except ValueError as error:
        errors = getattr(error, "errors", lambda: [])()
        raise validation_problem([
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in errors] or [{"field": "", "message": _("The body is not JSON.")}]
        ) from None


def _send(request, spec, pk):
    allow(request, Action.SEND)
    payload = _send_options(request)
    document = get(request, spec.model, pk)
    try:
        sent = services.send_document(document, user=actor(request),
                                      email=bool(payload and payload.email))
    except services.NotADraft as error:
        raise Problem(409, " ".join(error.messages), kind="not-draft") from None
    return detail(sent, just_sent=True)


def _download(request, spec, pk, syntax):
    allow(request, Action.READ)
    document = get(request, spec.model, pk, ("company", "client__company"))
    if syntax == "pdf":
        response = HttpResponse(document_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{pdf_filename(document)}"'
        return response
    try:
        result = export(document, syntax)
    except NotExportable as error:
        raise Problem(409, str(error), kind="not-exportable") from None
    response = HttpResponse(result.data, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


def _download_view(spec, syntax):
    def download(request, id: int = ID):
        return _download(request, spec, id, syntax)
    return download


def binary(media_type, description):
    return {"responses": {"200": {"description": description, "content": {
        media_type: {"schema": {"type": "string", "format": "binary"}}}}}}


DOWNLOADS = {
    "pdf": binary("application/pdf", "The PDF (Factur-X once issued, when the company "
                                     "makes e-invoices)."),
    "ubl": binary("application/xml", "The Peppol BIS 3.0 UBL of an issued document."),
    "cii": binary("application/xml", "The CII (EN 16931) of an issued document."),
    "facturx": binary("application/pdf", "The Factur-X PDF of an issued document."),
}


ONE = {"invoices": "invoice", "credit-notes": "credit_note"}
SEND_BODY = {"requestBody": {"required": False, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SendIn"}}}}}


def document_operations(spec, prefix, tag, summary_schema, out, page_schema, create_in,
                        patch_in):
    """The same operations for each kind of document, under ``/{prefix}``."""
    name = tag.replace("-", "_")

    def list_documents(request, state: str = Query(None, max_length=20),
                       client: int = Query(None, ge=1, le=MAX_ID),
                       date_from: date = Query(None, description="Issued on or after."),
                       date_to: date = Query(None, description="Issued on or before."),
                       cursor: str = Query(None, max_length=100),
                       limit: int = Query(25, ge=1, le=100)):
        return _list(request, spec, state, client, date_from, date_to, cursor, limit)

    def create_document(request, payload: create_in):
        return _create(request, spec, payload)

    def read_document(request, id: int = ID):
        allow(request, Action.READ)
        return detail(get(request, spec.model, id))

    def update_document(request, payload: patch_in, id: int = ID):
        return _update(request, spec, id, payload)

    def delete_document(request, id: int = ID):
        return _delete(request, spec, id)

    def send_document(request, id: int = ID):
        return _send(request, spec, id)

    list_documents.__doc__ = f"The company's {tag}, newest first; filter by state, client " \
                             "and issue dates."
    create_document.__doc__ = "A new draft with its lines (the pages' form checks it)."
    read_document.__doc__ = "One document with its lines; a draft with its number preview."
    update_document.__doc__ = "Change a draft; `lines`, when given, replace all its lines."
    delete_document.__doc__ = "Delete a draft (it never had a number, so none is lost)."
    send_document.__doc__ = ("Issue a draft: it gets its number, date and frozen content in "
                             "one transaction. Retry with the same Idempotency-Key: the "
                             "first answer is replayed, no second number is taken.")
    for view, verb, path, response in [
        (list_documents, "get", "", page_schema),
        (create_document, "post", "", {201: out}),
        (read_document, "get", "/{id}", out),
        (update_document, "patch", "/{id}", out),
        (delete_document, "delete", "/{id}", {204: None}),
        (send_document, "post", "/{id}/send", out),
    ]:
        view.__name__ = view.__name__.replace(
            "documents", name).replace("document", ONE[tag])
        extra = SEND_BODY if view is send_document else None
        getattr(router, verb)(f"/{prefix}{path}", response=response, tags=[tag],
                              operation_id=view.__name__, openapi_extra=extra)(view)
    for syntax, extra in DOWNLOADS.items():
        download = _download_view(spec, syntax)
        download.__name__ = f"download_{ONE[tag]}_{syntax}"
        download.__doc__ = extra["responses"]["200"]["description"]
        router.get(f"/{prefix}/{{id}}/{syntax}", tags=[tag], operation_id=download.__name__,
                   openapi_extra=extra, response={200: None})(download)


document_operations(INVOICES, "invoices", "invoices", s.InvoiceSummary, s.InvoiceOut,
                    s.InvoicePage, s.InvoiceIn, s.InvoicePatch)
document_operations(CREDIT_NOTES, "credit-notes", "credit-notes", s.CreditNoteSummary,
                    s.CreditNoteOut, s.CreditNotePage, s.CreditNoteIn, s.CreditNotePatch)


# --- Invoice actions ----------------------------------------------------------------------


@router.post("/invoices/{id}/credit", response={201: s.CreditNoteOut}, tags=["invoices"])
def credit_invoice(request, payload: s.CreditIn, id: int = ID):
    """
    Draft a credit note for the invoice: its open amount, chosen lines (each for some or all
    of its quantity) or an amount before tax at one of its rates. Send it to issue it.
    """
    allow(request, Action.CREDIT)
    invoice = get(request, Invoice, id, ("client",))
    lines = list(invoice.lines.all())
    data = {"reason": payload.reason}
    _refuse_ambiguous_credit(payload)
    if payload.lines:
        data["what"] = CreditForm.LINES
        data["line"] = [str(item.line) for item in payload.lines]
        for item in payload.lines:
            if item.quantity is not None:
                data[f"quantity_{item.line}"] = item.quantity
    elif payload.amount is not None:
        data.update(what=CreditForm.AMOUNT, amount=payload.amount, rate=payload.rate or "")
    else:
        data["what"] = CreditForm.OPEN
    form, = read_plainly(CreditForm(data, invoice=invoice, lines=lines))
    if data.get("rate") and data["rate"] not in form.groups:
        form.data["rate"] = _rate_choice(form.groups, data["rate"])
    if not form.is_valid():
        raise validation_problem(_credit_errors(form, payload))
    credit_note = services.draft_credit_note(
        invoice, reason=form.cleaned_data["reason"].strip(), amount_lines=form.credit_lines)
    return Status(201, detail(credit_note))


def _rate_choice(groups, rate):
    """The credit form's choice for ``rate`` as a client may write it ("20", "20.0", "AE 0"):
    the one tax group of that rate (and category, when named); else ``rate`` unchanged, which
    the form refuses."""
    category, _space, number = rate.strip().rpartition(" ")
    try:
        wanted = Decimal(number)
    except ArithmeticError:
        return rate
    found = [key for key, line in groups.items() if line.tax_rate == wanted
             and (not category or line.tax_category == category.upper())]
    return found[0] if len(found) == 1 else rate


def _credit_errors(form, payload):
    """The credit form's errors under the API's names: ``lines[0].quantity`` for a line's
    quantity, ``lines`` for the lines, ``amount`` or ``rate`` for what an amount lacks."""
    names = {f"quantity_{item.line}": f"lines[{index}].quantity"
             for index, item in enumerate(payload.lines or ())}
    names["line"] = "lines"
    # The form's "say what to credit" after a field refused it: its field already says why.
    summaries = {"no_amount": "rate" if payload.amount is not None else "amount",
                 "no_lines": "lines"}
    errors = []
    for field, found in form.errors.as_data().items():
        for error in found:
            name = names.get(field, "" if field == "__all__" else field)
            if error.code in summaries:
                name = summaries[error.code]
                if name in form.errors or name == "lines" and "line" in form.errors:
                    continue
            errors += [{"field": name, "message": message} for message in error.messages]
    return errors


def _refuse_ambiguous_credit(payload):
    """A credit request says one thing: the open amount (neither lines nor an amount), some
    lines (each once), or an amount."""
    errors = []
    if payload.lines is not None and not payload.lines:
        errors.append({"field": "lines", "message": _(
            "Name at least one line, or leave lines out to credit the open amount.")})
    if payload.lines and payload.amount is not None:
        errors.append({"field": "amount", "message": _(
            "Credit either lines or an amount, not both.")})
    if payload.rate is not None and payload.amount is None:
        errors.append({"field": "rate", "message": _(
            "A rate goes with an amount: give the amount to credit at that rate.")})
    seen = set()
    for index, item in enumerate(payload.lines or ()):
        if item.line in seen:
            errors.append({"field": f"lines[{index}].line", "message": _(
                "This line is named twice: name each line once, with its quantity.")})
        seen.add(item.line)
    if errors:
        raise validation_problem(errors)


@router.post("/invoices/{id}/cancel", response=s.CancelOut, tags=["invoices"])
def cancel_invoice(request, payload: s.CancelIn, id: int = ID):
    """Cancel a sent, unpaid invoice by issuing a credit note for its open amount, in one
    transaction."""
    allow(request, Action.CANCEL)
    invoice = get(request, Invoice, id)
    form = CancelForm({"reason": payload.reason})
    if not form.is_valid():
        raise validation_problem(form_errors(form))
    credit_note = services.cancel_invoice(invoice, user=actor(request),
                                          reason=form.cleaned_data["reason"])
    return {"invoice": detail(get(request, Invoice, id)),
            "credit_note": detail(credit_note) if credit_note else None}


@router.get("/invoices/{id}/payments", response=list[s.PaymentOut], tags=["invoices"])
def list_payments(request, id: int = ID):
    """The invoice's payments, oldest first (reversed ones say so)."""
    allow(request, Action.READ)
    invoice = get(request, Invoice, id)
    return [payment_out(p) for p in services.payments_of(invoice)]


@router.post("/invoices/{id}/payments", response={201: s.PaymentOut}, tags=["invoices"])
def record_payment(request, payload: s.PaymentIn, id: int = ID):
    """Record a payment on a sent invoice (at most what is left to pay); when nothing is
    left, the invoice becomes paid."""
    allow(request, Action.RECORD_PAYMENT)
    invoice = get(request, Invoice, id, ("client__company", "company"))
    if invoice.state != DocumentState.SENT:
        raise Problem(409, _("Only a sent invoice can receive a payment; %(invoice)s is "
                             "%(state)s.") % {"invoice": invoice,
                                              "state": invoice.get_state_display()},
                      kind="not-sent")
    data = {**payload.dict(), "date": _form_value(payload.date or timezone.localdate())}
    form, = read_plainly(PaymentForm(data, invoice=invoice))
    if not form.is_valid():
        raise validation_problem(form_errors(form))
    cleaned = form.cleaned_data
    payment = services.record_payment(
        invoice, amount=cleaned["amount"], date=cleaned["date"], method=cleaned["method"],
        reference=cleaned["reference"], user=actor(request))
    return Status(201, payment_out(payment))


@router.post("/invoices/{id}/payments/{payment_id}/reverse", response=s.PaymentOut,
             tags=["invoices"])
def reverse_payment(request, payload: s.ReverseIn, id: int = ID, payment_id: int = ID):
    """Reverse a mistaken payment of the invoice, saying why: the payment is kept, marked
    reversed, and a paid invoice is open again. A payment is reversed once."""
    allow(request, Action.RECORD_PAYMENT)
    invoice = get(request, Invoice, id)
    payment = scoped(request, Payment).filter(invoice=invoice, pk=payment_id).first()
    if payment is None:
        raise Http404
    form = ReverseForm({"reason": payload.reason})
    if not form.is_valid():
        raise validation_problem(form_errors(form))
    services.reverse_payment(payment, reason=form.cleaned_data["reason"], user=actor(request))
    return payment_out(services.payments_of(invoice).get(pk=payment.pk))


# --- Numbering and audit ------------------------------------------------------------------


@router.get("/numbering/series", response=list[s.NumberingSeriesOut], tags=["numbering"])
def numbering_series(request):
    """The company's numbering series, the default first."""
    allow(request, Action.READ)
    NumberingSettings.for_company(request.auth.company_id)  # the default, made on first use
    return list(NumberingSettings.objects.filter(company_id=request.auth.company_id))


@router.get("/numbering/preview", response=s.NumberingPreview, tags=["numbering"])
def numbering_preview(request, series: int = Query(None, ge=1, le=s.MAX_ID, description=(
        "A series' id (GET /numbering/series); none: the default series."))):
    """The numbers the next invoice and credit note of a series would take if sent now
    (consumes nothing: another document sent first takes them)."""
    allow(request, Action.READ)
    numbering = get(request, NumberingSettings, series) if series else \
        NumberingSettings.for_company(request.auth.company_id)
    preview = preview_settings(numbering)
    return {"invoice": preview[Kind.INVOICE], "credit_note": preview[Kind.CREDIT_NOTE]}


@router.get("/audit", response=s.AuditOut, tags=["audit"])
def audit_summary(request):
    """The gap audit of the company's numbering: each series with its first and last
    values, and how many findings (gaps, repeats, broken chains) it has. Owners."""
    allow(request, Action.MANAGE_NUMBERING)
    result = run_audit(AuditScope(company_id=request.auth.company_id))
    findings, shown = 0, []
    for finding in result.findings:
        findings += 1
        if len(shown) < AUDIT_FINDINGS_SHOWN:
            shown.append(finding.as_dict())
    series = [{**summary.as_dict(), "explained_jumps": len(summary.explained_jumps)}
              for summary in result.series]
    return {"series": series, "findings": findings, "first_findings": shown}
