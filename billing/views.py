"""
Folio's pages. Thin: company data only through ``tenancy.scoped``, every change of state
through ``billing.services``, every message for a person through ``messages``.
"""

import logging
import secrets
import sys
from decimal import Decimal
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, PasswordResetView, redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from counters.audit import AuditScope, run_audit
from counters.history import history_of
from counters.models import EXAMPLE_CLIENT_REF, Kind, NumberingSettings, NumberingSettingsChange
from counters.services import (
    delete_series,
    make_default_series,
    preview_number,
    preview_settings,
    save_numbering_settings,
    series_is_used,
)

from . import (
    balances,
    batches,
    formats,
    invitations,
    money,
    once,
    reminders,
    services,
    throttle,
)
from .einvoice.exports import NotExportable, einvoice_problems, export, ubl_problems
from .emails import deliveries_of
from .forms import (
    CancelForm,
    ClientForm,
    CompanyForm,
    CreditForm,
    CreditNoteForm,
    CreditNoteLineFormSet,
    DocumentFilterForm,
    InviteForm,
    InvoiceForm,
    InvoiceLineFormSet,
    NumberingSettingsForm,
    PaidInFullForm,
    PaymentForm,
    PreferencesForm,
    QuoteAnswerForm,
    QuoteForm,
    QuoteLineFormSet,
    ReverseForm,
    RoleForm,
    SendForm,
    SignUpForm,
)
from .languages import app_language, remember_preference
from .models import (
    Client,
    CreditNote,
    DocumentState,
    Invitation,
    Invoice,
    InvoiceLine,
    Membership,
    Payment,
    Quote,
    QuoteState,
    RecurringInvoice,
    SendBatch,
    SendBatchItem,
    UserPreferences,
)
from .pdf import document_pdf, pdf_filename
from .permissions import Action, can
from .tables import table_documents
from .tenancy import SESSION_KEY, remember_company, scoped

log = logging.getLogger(__name__)
AUDIT_FINDINGS_SHOWN = 200
PAGE_SIZE = 25
SEARCH_MAX_LENGTH = 100
LAST_PAGE = 1_000_000  # beyond it, the offset would overflow the database's integers


class Page:
    """
    One page of a list, without counting the whole list: a company with 100,000 documents
    should not pay for a COUNT(*) on every page view. Knows whether a next page exists.
    """

    def __init__(self, queryset, number, size=PAGE_SIZE):
        try:
            self.number = min(max(1, int(number or 1)), LAST_PAGE)
        except ValueError:
            self.number = 1
        start = (self.number - 1) * size
        rows = list(queryset[start:start + size + 1])
        self.object_list = rows[:size]
        self.has_next = len(rows) > size
        self.has_previous = self.number > 1
        self.next_page_number = self.number + 1
        self.previous_page_number = self.number - 1
        self.has_other_pages = self.has_next or self.has_previous
        self.start_index = start + 1 if rows else 0
        self.end_index = start + len(self.object_list)


class DocumentPages:
    """
    What the pages of one kind of document need: its model, form and line formset, titles,
    the states its list filters by. ``kind`` is the model's ``counters.models.Kind``, which
    also begins the names of its URLs (``credit_note_detail``).
    """

    def __init__(self, model, form, formset, title, title_plural, states, new_label):
        self.model, self.form, self.formset = model, form, formset
        self.title, self.title_plural, self.new_label = title, title_plural, new_label
        self.states = [choice for choice in model._meta.get_field("state").choices
                       if choice[0] in states]
        self.kind = model.kind

    def url(self, action, document=None):
        return reverse(f"{self.kind}_{action}", args=[document.pk] if document else [])


KINDS = {
    Kind.INVOICE: DocumentPages(Invoice, InvoiceForm, InvoiceLineFormSet,
                                gettext_lazy("Invoice"), gettext_lazy("Invoices"),
                                DocumentState.values, gettext_lazy("New invoice")),
    Kind.CREDIT_NOTE: DocumentPages(CreditNote, CreditNoteForm, CreditNoteLineFormSet,
                                    gettext_lazy("Credit note"), gettext_lazy("Credit notes"),
                                    [DocumentState.DRAFT, DocumentState.SENT],
                                    gettext_lazy("New credit note")),
    Kind.QUOTE: DocumentPages(Quote, QuoteForm, QuoteLineFormSet,
                              gettext_lazy("Quote"), gettext_lazy("Quotes"),
                              QuoteState.values, gettext_lazy("New quote")),
}


def company_required(view=None, *, action=Action.READ, post_action=None):
    """
    Login, a company, and the role the view needs, as ``permissions.can`` says: ``action``
    for every request, ``post_action`` also for a POST (pages every member may read and
    only some may change).
    """

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.company is None:
                return render(request, "billing/no_company.html", status=403)
            if not can(request.membership, action):
                raise PermissionDenied(_("Your role does not allow this."))
            if post_action and request.method == "POST" and not can(request.membership,
                                                                     post_action):
                raise PermissionDenied(_("Your role lets you read this, not change it."))
            return view(request, *args, **kwargs)
        return wrapper

    return decorate(view) if view else decorate


def clean_text(value: str, max_length: int) -> str:
    """Free text read straight from a request: no NUL (PostgreSQL refuses it), bounded."""
    return value.replace("\x00", "").strip()[:max_length]


def error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- Dashboard and company -----------------------------------------------------------------


@company_required
def dashboard(request):
    today = timezone.localdate()
    invoices = scoped(request, Invoice)
    # Counts and amounts per currency, in one query: what is left to pay after credit notes
    # and payments, and what was received.
    by_currency = balances.by_currency(invoices, today)
    return render(request, "billing/dashboard.html", {
        "by_currency": by_currency,
        "recent_invoices": table_documents(invoices)[:6],
        "recent_credit_notes": table_documents(scoped(request, CreditNote))[:6],
        "today": today,
    })


def health(request):
    """For load balancers: 200 when this server can query its database, 503 when not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


class ThrottledLoginView(LoginView):
    """
    Log-in, throttled per client address across usernames (one password tried on many
    accounts: spraying), beside django-axes' lock per username and address. Past
    FOLIO_LOGIN_FAILURES_PER_CLIENT failures in 15 minutes the address gets the lock-out
    page, right password or not.
    """

    def post(self, request, *args, **kwargs):
        if throttle.login_client_locked(request):
            return render(request, "registration/locked_out.html",
                          {"by_address": True}, status=429)
        return super().post(request, *args, **kwargs)


class ThrottledPasswordResetView(PasswordResetView):
    """
    Password reset, rate-limited: at most FOLIO_PASSWORD_RESETS_PER_ADDRESS e-mails an hour
    to one address (silently: the page says the same as for any address) and
    FOLIO_PASSWORD_RESETS_PER_CLIENT requests an hour from one client address (with a
    message: it tells nothing about accounts).
    """

    def form_valid(self, form):
        client = throttle.client_address(self.request)
        if not throttle.allow("reset-client", client,
                              getattr(settings, "FOLIO_PASSWORD_RESETS_PER_CLIENT", 10)):
            form.add_error(None, _("Too many password reset requests from your network: "
                                   "please try again in an hour."))
            return self.form_invalid(form)
        if not throttle.allow("reset-address", form.cleaned_data["email"].lower(),
                              getattr(settings, "FOLIO_PASSWORD_RESETS_PER_ADDRESS", 3)):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


def drop_broken_connection():
    """Close the database connection if it no longer answers: the next query opens one."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def server_error(request):
    """
    handler500: a lost database connection (``OperationalError``/``InterfaceError``) answers
    503 with a clear "try again" page, and the broken connection is closed so that the next
    request opens a fresh one; anything else answers the plain 500 page. Neither page reads
    the database or the session.
    """
    error = sys.exc_info()[1]
    if isinstance(error, OperationalError | InterfaceError):
        drop_broken_connection()
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "5"
        return response
    return render(request, "500.html", status=500)


@login_required
def whoami(request):
    """Who is logged in, as plain text: for scripts."""
    return HttpResponse(request.user.get_username(), content_type="text/plain")


@require_POST
@login_required
def switch_company(request):
    chosen = request.POST.get("company", "")
    membership = next((m for m in request.memberships if str(m.company_id) == chosen), None)
    if membership is not None:
        remember_company(request, membership)
    else:
        messages.error(request, _("You are not a member of that company."))
    return redirect("home")


@login_required
def preferences(request):
    """The user's own settings: the language of the app (empty: the browser's)."""
    mine = UserPreferences.objects.filter(user=request.user).first()
    form = PreferencesForm(request.POST or None,
                           instance=mine or UserPreferences(user=request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        remember_preference(request, request.user)
        translation.activate(app_language(request, request.company))  # say it in the new one
        messages.success(request, _("Preferences saved."))
        return redirect("preferences")
    return render(request, "billing/preferences.html", {"form": form})


# --- Clients -------------------------------------------------------------------------------


@company_required
def client_list(request):
    clients = scoped(request, Client)
    query = clean_text(request.GET.get("q", ""), SEARCH_MAX_LENGTH)
    if query:
        clients = clients.filter(
            Q(name__icontains=query) | Q(email__icontains=query) | Q(vat_id__icontains=query)
        )
    clients = clients.annotate(invoice_count=Count("invoices", distinct=True)).order_by(
        "name", "id")
    page = Page(clients, request.GET.get("page"))
    return render(request, "billing/client_list.html", {"page": page, "query": query})


@company_required(action=Action.CREATE)
def client_form(request, pk=None):
    client = get_object_or_404(scoped(request, Client), pk=pk) if pk else Client(
        company=request.company)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        client = form.save()
        messages.success(request, _("Client %(name)s saved.") % {"name": client.name})
        return redirect("client_detail", pk=client.pk)
    return render(request, "billing/client_form.html", {"form": form, "client": client})


@require_POST
@company_required(action=Action.CREATE)
def client_delete(request, pk):
    client = get_object_or_404(scoped(request, Client), pk=pk)
    try:
        services.delete_client(client)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("client_detail", pk=pk)
    messages.success(request, _("Client %(name)s deleted.") % {"name": client.name})
    return redirect("client_list")


@company_required
def client_detail(request, pk):
    client = get_object_or_404(scoped(request, Client), pk=pk)
    invoices = client.invoices.all()
    credit_notes = client.creditnotes.all()
    today = timezone.localdate()
    # The latest of each, not all: a client's whole history is a filter on the lists.
    invoice_rows = list(balances.with_balances(table_documents(invoices))[:PAGE_SIZE + 1])
    credit_note_rows = list(table_documents(credit_notes)[:PAGE_SIZE + 1])
    return render(request, "billing/client_detail.html", {
        "client": client, "balances": services.client_balances(client),
        "invoices": invoice_rows[:PAGE_SIZE], "more_invoices": len(invoice_rows) > PAGE_SIZE,
        "credit_notes": credit_note_rows[:PAGE_SIZE],
        "more_credit_notes": len(credit_note_rows) > PAGE_SIZE, "today": today,
        # Offered when nothing names the client (the database refuses the others).
        "deletable": not invoice_rows and not credit_note_rows
        and not client.quotes.exists() and not client.recurring_invoices.exists(),
        "send_all": [(Kind.INVOICE, _("Send all draft invoices in background")),
                     (Kind.CREDIT_NOTE, _("Send all draft credit notes in background"))],
    })


# --- Documents -----------------------------------------------------------------------------


@company_required
def document_list(request, kind):
    spec = KINDS[kind]
    documents = scoped(request, spec.model)
    filters = DocumentFilterForm(request.GET or None, company=request.company,
                                 states=spec.states)
    if filters.is_valid():
        data = filters.cleaned_data
        if data["q"]:
            documents = documents.filter(
                Q(number__icontains=data["q"]) | Q(client__name__icontains=data["q"]))
        if data["state"]:
            documents = documents.filter(state=data["state"])
        if data["client"]:
            documents = documents.filter(client=data["client"])
        if data["date_from"]:
            documents = documents.filter(issue_date__gte=data["date_from"])
        if data["date_to"]:
            documents = documents.filter(issue_date__lte=data["date_to"])
    open_column = spec.kind == Kind.INVOICE
    rows = table_documents(documents)
    page = Page(balances.with_balances(rows) if open_column else rows, request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "billing/document_list.html", {
        "spec": spec, "page": page, "filters": filters, "query": query.urlencode(),
        "open_column": open_column, "quote_columns": spec.kind == Kind.QUOTE,
        "today": timezone.localdate(),
        "filtered_client": filters.cleaned_data["client"] if filters.is_valid() else None,
    })


@company_required(action=Action.CREATE)
def document_form(request, kind, pk=None):
    spec = KINDS[kind]
    document = get_object_or_404(scoped(request, spec.model), pk=pk) if pk else spec.model(
        company=request.company)
    if document.pk and not document.is_draft:
        if kind == Kind.QUOTE:
            messages.error(request, _("%(document)s has been sent and can no longer be "
                                      "edited.") % {"document": document})
        else:
            messages.error(request, _("%(document)s has been issued and can no longer be "
                                      "edited; correct it with a credit note.")
                           % {"document": document})
        return redirect(spec.url("detail", document))
    initial = {"client": request.GET["client"]} if request.GET.get("client") else {}
    form = spec.form(request.POST or None, instance=document, company=request.company,
                     initial=initial)
    formset = spec.formset(request.POST or None, instance=document, prefix="lines")
    token = request.POST.get("form_token") or secrets.token_urlsafe(16)
    if request.method == "POST" and not document.pk:
        already = once.created_by(request, token, scoped(request, spec.model))
        if already is not None:  # the same new-draft form again (Back, then Save)
            messages.info(request, _("This form was already saved: here is the draft it "
                                     "created. Nothing was added."))
            return redirect(spec.url("detail", already))
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            document = form.save()
            formset.instance = document
            formset.save(commit=False)
            for line in formset.deleted_objects:
                line.delete()
            # Positions follow the rows as the form orders them (their ORDER, which the Move
            # buttons change; else the rows' order), changed or not: saving a draft never
            # reorders its lines by itself.
            for position, line_form in enumerate(formset.ordered_forms):
                line = line_form.instance
                if line.pk is None or line_form.has_changed() or line.position != position:
                    line.position = position
                    line.save()
            document.update_totals()
        if not pk:
            once.remember(request, token, document)
        messages.success(request, _("Draft saved."))
        return redirect(spec.url("detail", document))
    if request.method == "GET" and not document.pk:
        formset = spec.formset(instance=document, prefix="lines",
                               initial=[{"quantity": 1, "tax_rate": Decimal("20")}])
        formset.extra = 1
    return render(request, "billing/document_form.html", {
        "spec": spec, "form": form, "formset": formset, "document": document,
        "totals": _totals(formset), "form_token": token,
    })


def _totals(formset):
    """Live totals of the lines in a bound or unbound formset, by the model's rounding."""
    lines = []
    for line_form in formset.forms:
        if line_form.is_bound:
            data = line_form.cleaned_data if line_form.is_valid() else {}
        else:
            data = {f: getattr(line_form.instance, f) for f in ("quantity", "unit_price",
                                                                  "tax_rate", "tax_category")}
        if data.get("DELETE") or data.get("unit_price") is None:
            continue
        lines.append(InvoiceLine(quantity=data.get("quantity") or 0,
                                 unit_price=data["unit_price"],
                                 tax_rate=data.get("tax_rate") or 0,
                                 tax_category=data.get("tax_category") or "S"))
    return money.totals(lines)


def _unread_lines(formset) -> int:
    """How many lines the live totals leave out because something typed in them cannot be
    read (their errors show when the form is saved)."""
    return sum(1 for line_form in formset.forms
               if line_form.is_bound and line_form.has_changed() and not line_form.is_valid()
               and not line_form.cleaned_data.get("DELETE"))


@require_POST
@company_required
def document_totals(request, kind):
    """htmx: the totals block for the lines being edited."""
    spec = KINDS[kind]
    pk = _pk(request.GET.get("pk", ""))
    # Editing a draft: its existing lines are validated against it.
    document = get_object_or_404(scoped(request, spec.model), pk=pk) if pk is not None \
        else spec.model(company=request.company)
    formset = spec.formset(request.POST, instance=document, prefix="lines")
    formset.is_valid()
    currency = request.POST.get("currency", request.company.currency)[:3].upper()
    return render(request, "billing/_totals.html",
                  {"totals": _totals(formset), "currency": currency,
                   "unread": _unread_lines(formset)})


@company_required
def document_detail(request, kind, pk):
    spec = KINDS[kind]
    document = get_object_or_404(
        scoped(request, spec.model).select_related("client__company", "company", "series"),
        pk=pk)
    return render(request, "billing/document_detail.html",
                  _detail_context(request, spec, document))


def _detail_context(request, spec, document, *, payment_form=None, paid_form=None):
    content = document.content  # as issued, once issued
    context = {
        "spec": spec, "document": document, "content": content, "lines": content.lines,
        "taxes": content.breakdown, "today": timezone.localdate(),
        "history": history_of(document.kind, document.pk).select_related("actor"),
        "deliveries": deliveries_of(document),
        "send_form": SendForm(initial={"email": bool(document.client.email)}),
        "cancel_form": CancelForm(),
        "makes_einvoice": document.company.einvoicing and document.is_einvoice_kind,
    }
    if document.is_draft:
        context["preview"] = preview_number(document)
    # What keeps the document from having a valid e-invoice, when its company makes them:
    # a draft is refused on send; an issued one gets no e-invoice downloads. What only
    # Peppol needs leaves out the UBL alone.
    if document.company.einvoicing and document.is_einvoice_kind:
        context["einvoice_problems"] = einvoice_problems(content)
        context["ubl_problems"] = ubl_problems(content)
    if spec.kind == Kind.QUOTE:
        context["invoices"] = document.invoices.all()
        context["can_answer"] = (document.state == QuoteState.SENT
                                 and can(request.membership, Action.SEND)
                                 and can(request.membership, Action.CREATE))
        context["answer_form"] = QuoteAnswerForm()
    if spec.kind == Kind.INVOICE and document.quote_id:
        context["quote"] = document.quote
    if spec.kind == Kind.INVOICE and document.is_issued:
        payments = list(services.payments_of(document))
        paid = document.paid()
        open_amount = document.open_amount(paid=paid)
        context["credit_notes"] = document.credit_notes.all()
        context["open_amount"] = open_amount
        context["paid_amount"] = paid
        context["payments"] = payments
        context["can_record_payment"] = (document.state == DocumentState.SENT
                                         and open_amount > 0
                                         and can(request.membership, Action.RECORD_PAYMENT))
        context["can_reverse"] = can(request.membership, Action.RECORD_PAYMENT)
        context["payment_form"] = payment_form or PaymentForm(invoice=document,
                                                              open_amount=open_amount)
        context["paid_form"] = paid_form or PaidInFullForm()
        context["reverse_form"] = ReverseForm()
        # Reminders come after the due date: an invoice not yet due has none to read.
        today = context["today"]
        overdue = document.due_date is not None and document.due_date < today
        context["reminders"] = list(document.reminders.all()) if overdue else []
        context["next_reminder"] = reminders.next_reminder(
            document, done=context["reminders"], open_amount=open_amount)
    return context


@require_POST
@company_required(action=Action.SEND)
def document_send(request, kind, pk):
    spec = KINDS[kind]
    document = get_object_or_404(scoped(request, spec.model), pk=pk)
    form = SendForm(request.POST)
    form.is_valid()
    try:
        sent = services.send_document(document, user=request.user,
                                      email=form.cleaned_data.get("email", False))
    except ValidationError as error:
        messages.error(request, _("Not sent: %(reason)s") % {"reason": error_text(error)})
    except DatabaseError:
        # The reply may have been lost after the commit: ask the database what happened.
        log.exception("Sending %s failed in the database", document)
        _say_what_the_send_did(request, spec.model, document.pk)
    else:
        messages.success(request, _("%(document)s issued on %(date)s.") % {
            "document": sent, "date": formats.day(sent.issue_date)})
    return redirect(spec.url("detail", document))


def _current_document(model, pk):
    return model.objects.filter(pk=pk).only("state", "number", "issue_date").first()


def _say_what_the_send_did(request, model, pk):
    """After a database error: read the document again (on a fresh connection if the old one
    broke) and say whether it was issued, never a guess."""
    try:
        drop_broken_connection()
        if connection.in_atomic_block and connection.needs_rollback:
            raise DatabaseError("inside a broken transaction")
        current = _current_document(model, pk)
    except DatabaseError:
        log.exception("Reading %s #%s again failed", model.__name__, pk)
        messages.warning(request, _("The database did not answer, so we cannot tell yet "
                                    "whether the document was issued. Open it again in a "
                                    "moment to see."))
        return
    if current is not None and current.is_issued:
        messages.success(request, _("Issued as %(number)s on %(date)s (the database's "
                                    "answer was lost; we checked).") % {
            "number": current.number, "date": current.issue_date})
    else:
        messages.error(request, _("Not sent: the database did not complete the operation, so "
                                  "nothing was issued. Please try again."))


@require_POST
@company_required(action=Action.CREATE)
def document_delete(request, kind, pk):
    spec = KINDS[kind]
    document = get_object_or_404(scoped(request, spec.model), pk=pk)
    try:
        with transaction.atomic():
            document.delete()
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect(spec.url("detail", document))
    messages.success(request, _("Draft deleted. It never had a number, so none is lost."))
    return redirect(spec.url("list"))


@company_required
def document_pdf_view(request, kind, pk):
    spec = KINDS[kind]
    document = get_object_or_404(
        scoped(request, spec.model).select_related("client__company", "company"), pk=pk)
    response = HttpResponse(document_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pdf_filename(document)}"'
    return response


@require_GET
@company_required
def document_einvoice(request, kind, pk, syntax):
    """An issued document's e-invoice (UBL, CII or Factur-X PDF), as a download."""
    spec = KINDS[kind]
    document = get_object_or_404(scoped(request, spec.model), pk=pk)
    try:
        result = export(document, syntax)
    except NotExportable as error:
        messages.error(request, str(error))
        return redirect(spec.url("detail", document))
    response = HttpResponse(result.data, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


@require_POST
@company_required(action=Action.SEND)
def document_email(request, kind, pk):
    spec = KINDS[kind]
    document = get_object_or_404(scoped(request, spec.model).select_related("client"), pk=pk)
    delivery_id = _pk(request.POST.get("delivery", ""))  # "Retry" on a failed delivery
    try:
        delivery = services.retry_email(document, user=request.user, delivery_id=delivery_id)
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, _("The e-mail to %(to)s is on its way: its state is "
                                    "shown below.") % {"to": delivery.recipient or "—"})
    return redirect(spec.url("detail", document))


# --- Quotes --------------------------------------------------------------------------------


def _answer_quote(request, pk, operation, done):
    """Decline or expire the quote ``pk`` (``operation``, a service), then back to its page."""
    quote = get_object_or_404(scoped(request, Quote), pk=pk)
    form = QuoteAnswerForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return redirect("quote_detail", pk=pk)
    try:
        operation(quote, user=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, done % {"quote": quote})
    return redirect("quote_detail", pk=pk)


@require_POST
@company_required(action=Action.SEND)
def quote_accept(request, pk):
    """The client accepted: the quote's invoice is drafted, and shown to check and send."""
    if not can(request.membership, Action.CREATE):
        raise PermissionDenied(_("Your role does not allow this."))
    quote = get_object_or_404(scoped(request, Quote), pk=pk)
    try:
        invoice = services.accept_quote(quote, user=request.user)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("quote_detail", pk=pk)
    messages.success(request, _("%(quote)s accepted: here is its invoice, as a draft. Check "
                                "it, then send it.") % {"quote": quote})
    return redirect("invoice_detail", pk=invoice.pk)


@require_POST
@company_required(action=Action.SEND)
def quote_decline(request, pk):
    """The client said no: the quote is declined (with the reason given, if any)."""
    return _answer_quote(request, pk, services.decline_quote,
                         _("%(quote)s declined; it keeps its number."))


@require_POST
@company_required(action=Action.SEND)
def quote_expire(request, pk):
    """The offer lapsed: the quote is marked expired."""
    return _answer_quote(request, pk, services.expire_quote,
                         _("%(quote)s marked expired; it keeps its number."))


@require_POST
@company_required(action=Action.RECORD_PAYMENT)
def invoice_mark_paid(request, pk):
    """Paid in full: a payment of the whole open amount, today, by the method given."""
    invoice = get_object_or_404(scoped(request, Invoice).select_related(
        "client__company", "company"), pk=pk)
    form = PaidInFullForm(request.POST)
    if not form.is_valid():
        return _detail_again(request, invoice, paid_form=form)
    try:
        services.mark_paid(invoice, user=request.user, method=form.cleaned_data["method"],
                           reference=form.cleaned_data["reference"])
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, _("%(invoice)s marked paid.") % {"invoice": invoice})
    return redirect("invoice_detail", pk=pk)


@require_POST
@company_required(action=Action.RECORD_PAYMENT)
def invoice_payment(request, pk):
    """Record a payment against the invoice; a form with errors comes back as it was typed."""
    invoice = get_object_or_404(scoped(request, Invoice).select_related(
        "client__company", "company"), pk=pk)
    if invoice.state != DocumentState.SENT:  # no payment form on its page to show errors in
        messages.error(request, _("Only a sent invoice can receive a payment; %(invoice)s is "
                                  "%(state)s.") % {"invoice": invoice,
                                                   "state": invoice.get_state_display()})
        return redirect("invoice_detail", pk=pk)
    form = PaymentForm(request.POST, invoice=invoice)
    if not form.is_valid():
        return _detail_again(request, invoice, payment_form=form)
    data = form.cleaned_data
    try:
        payment = services.record_payment(
            invoice, amount=data["amount"], date=data["date"], method=data["method"],
            reference=data["reference"], user=request.user)
    except ValidationError as error:  # the invoice changed meanwhile (paid, cancelled…)
        messages.error(request, _("Not recorded: %(reason)s") % {"reason": error_text(error)})
        return redirect("invoice_detail", pk=pk)
    invoice = scoped(request, Invoice).get(pk=pk)  # as the payment left it
    if invoice.state == DocumentState.PAID:
        messages.success(request, _("Payment of %(amount)s recorded: %(invoice)s is paid.") % {
            "amount": formats.money(payment.amount, invoice.currency), "invoice": invoice})
    else:
        messages.success(request, _("Payment of %(amount)s recorded; %(open)s left to pay.") % {
            "amount": formats.money(payment.amount, invoice.currency),
            "open": formats.money(invoice.open_amount(), invoice.currency)})
    return redirect("invoice_detail", pk=pk)


def _detail_again(request, invoice, **forms):
    """The invoice's page with a form as it was posted, its errors shown."""
    context = _detail_context(request, KINDS[Kind.INVOICE], invoice, **forms)
    return render(request, "billing/document_detail.html", context, status=200)


@require_POST
@company_required(action=Action.RECORD_PAYMENT)
def payment_reverse(request, pk):
    payment = get_object_or_404(scoped(request, Payment).select_related("invoice"), pk=pk)
    form = ReverseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the payment is reversed."))
        return redirect("invoice_detail", pk=payment.invoice_id)
    try:
        services.reverse_payment(payment, reason=form.cleaned_data["reason"],
                                 user=request.user)
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, _("The payment of %(amount)s on %(date)s is reversed.") % {
            "amount": formats.money(payment.amount, payment.invoice.currency),
            "date": formats.day(payment.date)})
    return redirect("invoice_detail", pk=payment.invoice_id)


@require_POST
@company_required(action=Action.CANCEL)
def invoice_cancel(request, pk):
    invoice = get_object_or_404(scoped(request, Invoice), pk=pk)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the invoice is cancelled."))
        return redirect("invoice_detail", pk=pk)
    try:
        credit_note = services.cancel_invoice(invoice, user=request.user,
                                              reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("invoice_detail", pk=pk)
    if credit_note:
        messages.success(request, _("%(invoice)s cancelled by credit note %(credit)s.") % {
            "invoice": invoice, "credit": credit_note})
    else:
        messages.success(request, _("%(invoice)s cancelled; it was already fully credited.")
                         % {"invoice": invoice})
    return redirect("invoice_detail", pk=pk)


@company_required(action=Action.CREDIT)
def invoice_credit(request, pk):
    """
    One question: credit the whole open amount, chosen lines (with quantities) or an amount;
    the page shows what the credit note will contain (updated as the answer changes, by htmx)
    before it is drafted.
    """
    invoice = get_object_or_404(scoped(request, Invoice).select_related("client"), pk=pk)
    lines = list(invoice.lines.all())
    form = CreditForm(request.POST or None, invoice=invoice, lines=lines)
    if request.method == "POST" and not request.htmx and form.is_valid():
        try:
            credit_note = services.draft_credit_note(
                invoice, reason=form.cleaned_data["reason"].strip(),
                amount_lines=form.credit_lines)
        except ValidationError as error:
            messages.error(request, error_text(error))
            return redirect("invoice_detail", pk=pk)
        messages.success(request, _("Credit note drafted. Check it, then send it to issue it."))
        return redirect("credit_note_detail", pk=credit_note.pk)
    return render(request, "billing/invoice_credit.html", {
        "invoice": invoice, "lines": lines, "open_amount": invoice.open_amount(),
        "form": form, "preview": _credit_preview(form, invoice)})


def _credit_preview(form, invoice):
    """The lines and totals the credit note would have with the form's answer, or None."""
    if form.is_bound and not form.is_valid():
        return None
    chosen = form.credit_lines if form.is_bound else None
    if chosen is None:
        chosen = services.open_lines(invoice)
    lines = [services.CreditLine(*line) for line in chosen]
    return {"lines": lines, "totals": money.totals(lines)}


# --- Members -------------------------------------------------------------------------------


def _pk(value):
    """A posted id, or None when it is not one (the lookup then finds nothing: 404)."""
    return int(value) if value.isdecimal() and value.isascii() and len(value) < 19 else None


@company_required(post_action=Action.MANAGE_MEMBERS)
def members(request):
    """
    Owners invite people by e-mail, change roles, remove members and revoke invitations.
    Every member sees who belongs to the company, and may leave it.
    """
    post = request.POST if request.method == "POST" else None
    role_form = RoleForm(post if post and "member" in post else None, company=request.company)
    invite_form = InviteForm(post if post and "member" not in post else None)
    if post:
        try:
            if "remove" in post:
                membership = get_object_or_404(scoped(request, Membership),
                                               pk=_pk(post["remove"]))
                services.remove_membership(membership)
                messages.success(request, _("%(user)s removed.") % {"user": membership.user})
                return redirect("members")
            if "revoke" in post:
                invitation = get_object_or_404(scoped(request, Invitation),
                                               pk=_pk(post["revoke"]))
                invitations.revoke(invitation)
                messages.success(request, _("The invitation to %(email)s is revoked.") % {
                    "email": invitation.email})
                return redirect("members")
            if "member" in post and role_form.is_valid():
                membership = services.set_membership(
                    request.company, role_form.cleaned_data["member"].user,
                    role_form.cleaned_data["role"])
                messages.success(request, _("%(user)s is now %(role)s.") % {
                    "user": membership.user, "role": membership.get_role_display()})
                return redirect("members")
            if "member" not in post and invite_form.is_valid():
                email = invite_form.cleaned_data["email"]
                invitations.invite(
                    request.company, email, invite_form.cleaned_data["role"],
                    invited_by=request.user,
                    link_for=lambda token: request.build_absolute_uri(
                        f"{reverse('invitation_accept')}?t={token}"))
                # The same answer whether or not someone has an account with that address.
                messages.success(request, _("Invitation sent to %(email)s.") % {"email": email})
                return redirect("members")
        except ValidationError as error:
            messages.error(request, error_text(error))
            return redirect("members")
    pending = scoped(request, Invitation).filter(
        accepted_at=None, revoked_at=None,
        created_at__gte=timezone.now() - invitations.max_age())
    return render(request, "billing/members.html", {
        "form": invite_form, "role_form": role_form,
        "can_manage": can(request.membership, Action.MANAGE_MEMBERS),
        "memberships": scoped(request, Membership).select_related("user")
        .order_by("user__username"),
        "invitations": pending if can(request.membership, Action.MANAGE_MEMBERS) else [],
    })


@require_POST
@company_required
def leave_company(request):
    """The member leaves the current company (the last owner cannot)."""
    company = request.company
    try:
        invitations.leave(request.membership)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("members")
    request.session.pop(SESSION_KEY, None)
    messages.success(request, _("You left %(company)s.") % {"company": company})
    return redirect("home")


def invitation_accept(request):
    """The link of an invitation e-mail: who invites, to what; accept it (logged in)."""
    token = request.POST.get("t") or request.GET.get("t", "")
    invitation = invitations.from_token(token[:200])
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(f"{reverse('invitation_accept')}?t={token}")
        try:
            membership = invitations.accept(token[:200], request.user)
        except ValidationError as error:
            messages.error(request, error_text(error))
            return redirect("home")
        remember_company(request, membership)
        messages.success(request, _("You are now a member of %(company)s.") % {
            "company": membership.company})
        return redirect("home")
    return render(request, "billing/invitation.html",
                  {"invitation": invitation, "token": token[:200]},
                  status=200 if invitation else 404)


def invitation_signup(request):
    """Accept an invitation by creating an account (its e-mail is the invited address)."""
    token = (request.POST.get("t") or request.GET.get("t", ""))[:200]
    invitation = invitations.from_token(token)
    if invitation is None:
        return render(request, "billing/invitation.html", {"invitation": None}, status=404)
    if request.user.is_authenticated:
        return redirect(f"{reverse('invitation_accept')}?t={token}")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                user = form.save(commit=False)
                user.email = invitation.email
                user.save()
                membership = invitations.accept(token, user)
        except ValidationError as error:
            messages.error(request, error_text(error))
            return redirect("login")
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        remember_company(request, membership)
        messages.success(request, _("Welcome! You are now a member of %(company)s.") % {
            "company": membership.company})
        return redirect("home")
    return render(request, "billing/signup.html",
                  {"form": form, "invitation": invitation, "token": token})


# --- Company, numbering and audit ----------------------------------------------------------


@company_required(post_action=Action.MANAGE_MEMBERS)
def company_settings(request):
    """The company's own details, as its documents and e-invoices state them. Owners edit."""
    form = CompanyForm(request.POST or None, instance=request.company)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Company details saved."))
        return redirect("company_settings")
    return render(request, "billing/company_settings.html", {
        "form": form, "can_manage": can(request.membership, Action.MANAGE_MEMBERS)})



@company_required(post_action=Action.MANAGE_NUMBERING)
def numbering_settings(request, pk=None):
    """A numbering series' settings (default: the company's default series)."""
    numbering = _numbering_series(request, pk)
    return _numbering_page(request, numbering, _("Numbering settings saved."))


@company_required(action=Action.MANAGE_NUMBERING)
def numbering_series_create(request):
    NumberingSettings.for_company(request.company.pk)  # the default series comes first
    numbering = NumberingSettings(company=request.company)
    return _numbering_page(request, numbering, _("Series created."))


def _numbering_series(request, pk):
    if pk is None:
        return NumberingSettings.for_company(request.company.pk)
    return get_object_or_404(NumberingSettings, company=request.company, pk=pk)


def _numbering_page(request, numbering, saved_message):
    form = NumberingSettingsForm(request.POST or None, instance=numbering)
    if request.method == "POST" and form.is_valid():
        try:
            # The service checks again with every series of the company locked, the
            # company-wide rules (one name, one code) included.
            saved = save_numbering_settings(form.instance, user=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, saved_message)
            return redirect("numbering_series", pk=saved.pk)
    series = list(NumberingSettings.objects.filter(company=request.company))
    return render(request, "billing/numbering_settings.html", {
        "form": form, "examples": _examples(form), "numbering": numbering,
        "all_series": series,
        "deletable": numbering.pk and not numbering.is_default
        and not series_is_used(numbering),
        "can_manage": can(request.membership, Action.MANAGE_NUMBERING),
        "changes": [
            (change, (change.new or {}).get("name") or (change.old or {}).get("name") or "")
            for change in NumberingSettingsChange.objects.filter(company=request.company)
            .select_related("changed_by")[:20]],
    })


@require_POST
@company_required(action=Action.MANAGE_NUMBERING)
def numbering_series_default(request, pk):
    numbering = get_object_or_404(NumberingSettings, company=request.company, pk=pk)
    make_default_series(numbering, user=request.user)
    messages.success(request, _("%(series)s is now the default series.") % {
        "series": numbering})
    return redirect("numbering_series", pk=numbering.pk)


@require_POST
@company_required(action=Action.MANAGE_NUMBERING)
def numbering_series_delete(request, pk):
    numbering = get_object_or_404(NumberingSettings, company=request.company, pk=pk)
    try:
        delete_series(numbering, user=request.user)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("numbering_series", pk=numbering.pk)
    messages.success(request, _("Series %(series)s deleted.") % {"series": numbering})
    return redirect("numbering_settings")


def _examples(form):
    """Next numbers under the settings in ``form``, or None while they are invalid."""
    if form.is_bound and not form.is_valid():
        return None
    numbering = form.instance
    return {**preview_settings(numbering), "client_ref": EXAMPLE_CLIENT_REF,
            "per_client": any(numbering.uses_client_counter(kind)
                              or numbering.needs_client_ref(kind) for kind in Kind)}


@require_POST
@company_required
def numbering_preview(request):
    """htmx: the live example of the next numbers under the settings being edited, of the
    series ``?series=`` (its id, ``new`` for a series being created; none: the default)."""
    series_id = request.GET.get("series", "")
    if series_id == "new":
        numbering = NumberingSettings(company=request.company)
    else:
        numbering = _numbering_series(request, _pk(series_id))
    form = NumberingSettingsForm(request.POST, instance=numbering)
    return render(request, "billing/_numbering_examples.html",
                  {"examples": _examples(form), "form": form})


@company_required
def audit(request):
    if not request.user.is_staff:
        raise PermissionDenied(_("The audit is for staff."))
    result = run_audit(AuditScope(company_id=request.company.pk))
    findings = []
    more = 0
    for finding in result.findings:
        if len(findings) < AUDIT_FINDINGS_SHOWN:
            findings.append(finding)
        else:
            more += 1
    return render(request, "billing/audit.html", {
        "series": result.series, "findings": findings, "more": more,
    })


# --- Month-end runs ------------------------------------------------------------------------

BATCH_ITEMS_SHOWN = 100


@require_POST
@company_required(action=Action.SEND)
def batch_start(request):
    """
    Send drafts in the background: the ticked ones (``document``), or with ``client`` every
    draft of that client. Only drafts of the current company are taken; then the run's page.
    """
    kind = request.POST.get("kind", "")
    if kind not in KINDS:
        messages.error(request, _("Unknown kind of document."))
        return redirect("invoice_list")
    spec = KINDS[kind]
    client = schedule = None
    if request.POST.get("client"):
        client = get_object_or_404(scoped(request, Client), pk=_pk(request.POST["client"]))
        ids = batches.drafts(request.company, kind, client=client)
    elif request.POST.get("recurring") and kind == Kind.INVOICE:
        schedule = get_object_or_404(scoped(request, RecurringInvoice),
                                     pk=_pk(request.POST["recurring"]))
        ids = batches.drafts(request.company, kind, recurring=schedule)
    else:
        posted = [_pk(value) for value in request.POST.getlist("document")]
        ids = batches.drafts(request.company, kind, ids=[pk for pk in posted if pk])
    if not ids:
        if client is not None or schedule is not None:
            messages.info(request, _("There is no draft %(kind)s to send.") % {
                "kind": spec.model._meta.verbose_name})
        else:
            messages.error(request, _("Select at least one draft to send."))
        if schedule is not None:
            return redirect("recurring_invoice_detail", pk=schedule.pk)
        return redirect(reverse("client_detail", args=[client.pk]) if client
                        else spec.url("list"))
    batch = batches.start(request.company, kind, ids, request.user,
                          email=request.POST.get("email") == "on")
    messages.success(request, _("Sending %(count)s draft(s) in the background. You may "
                                "close this page and come back.") % {"count": len(ids)})
    return redirect("sendbatch_detail", pk=batch.pk)


@company_required
def batch_list(request):
    runs = scoped(request, SendBatch).select_related("created_by").annotate(
        total=Count("items"),
        issued=Count("items", filter=Q(items__outcome=SendBatchItem.Outcome.ISSUED)),
        failed=Count("items", filter=Q(items__outcome=SendBatchItem.Outcome.FAILED)),
    )
    return render(request, "billing/batch_list.html", {
        "page": Page(runs, request.GET.get("page")), "query": ""})


@company_required
def batch_detail(request, pk):
    """A run's progress; htmx asks for the progress part alone, every second while running."""
    batch = get_object_or_404(scoped(request, SendBatch).select_related("created_by"), pk=pk)
    spec = KINDS[batch.kind]
    failed = [(item, spec.url("detail", spec.model(pk=item.document_id))) for item in
              batch.items.filter(outcome=SendBatchItem.Outcome.FAILED)[:BATCH_ITEMS_SHOWN]]
    issued = [(item, spec.url("detail", spec.model(pk=item.document_id))) for item in
              batch.items.filter(outcome=SendBatchItem.Outcome.ISSUED)
              .order_by("-finished_at", "-id")[:BATCH_ITEMS_SHOWN]]
    context = {"batch": batch, "spec": spec, "progress": batches.progress(batch),
               "failed": failed, "issued": issued, "shown": BATCH_ITEMS_SHOWN,
               "list_url": spec.url("list")}
    if request.htmx:
        return render(request, "billing/_batch_progress.html", context)
    return render(request, "billing/batch_detail.html", context)
