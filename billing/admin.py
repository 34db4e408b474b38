"""
Admin for Folio's documents. Issuing, paying and cancelling go through billing.services,
exactly as in the app: the admin is never a second road to a number.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from counters.admin import CompanyScopedAdmin, CompanyScopedInline, company_action
from counters.services import preview_number

from . import services
from .forms import MAX_LINES, BoundedLinesFormSet
from .models import (
    Client,
    Company,
    CreditNote,
    CreditNoteLine,
    EmailDelivery,
    Invitation,
    Invoice,
    InvoiceLine,
    Membership,
    Payment,
    PaymentReversal,
    Quote,
    QuoteLine,
    RecurringInvoice,
    RecurringLine,
    RecurringMode,
    Reminder,
)
from .permissions import Action, user_can


class MembershipInline(CompanyScopedInline, admin.TabularInline):
    # Members are the owners' to manage: a viewer sees the rows, never changes their own.
    model = Membership
    write_action = Action.MANAGE_MEMBERS
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Company)
class CompanyAdmin(CompanyScopedAdmin):
    company_path = "pk"
    write_action = Action.MANAGE_MEMBERS

    list_display = ["name", "country", "vat_id", "currency", "einvoicing"]
    search_fields = ["name", "vat_id"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "email", "locale", "currency", "payment_terms_days",
                           "reminder_days"]}),
        (_("Address"), {"fields": ["street", "postal_code", "city", "country"]}),
        (_("Identifiers"), {"fields": ["vat_id", "registration_id", "iban", "bic"]}),
        (_("Electronic invoices"), {"fields": ["einvoicing", "endpoint_scheme", "endpoint_id"]}),
    ]


@admin.register(Client)
class ClientAdmin(CompanyScopedAdmin):
    list_display = ["name", "code", "company", "email", "country", "vat_id", "language"]
    list_filter = ["company", "language", "country"]
    fieldsets = [
        (None, {"fields": ["company", "name", "code", "email", "language", "reference"]}),
        (_("Address"), {"fields": ["street", "postal_code", "city", "country"]}),
        (_("Electronic invoices"), {"fields": ["vat_id", "endpoint_scheme", "endpoint_id",
                                               "attach_ubl"]}),
    ]
    search_fields = ["name", "code", "email", "vat_id"]
    list_select_related = ["company"]


class LineInline(CompanyScopedInline, admin.TabularInline):
    formset = BoundedLinesFormSet  # amounts that fit the columns, as in the app
    max_num = MAX_LINES
    extra = 1
    fields = ["position", "description", "quantity", "unit_code", "unit_price", "tax_category",
              "tax_rate", "tax_exemption_reason", "tax_exemption_code"]

    def _editable(self, obj):
        return obj is None or obj.is_draft

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class InvoiceLineInline(LineInline):
    model = InvoiceLine


class CreditNoteLineInline(LineInline):
    model = CreditNoteLine


class QuoteLineInline(LineInline):
    model = QuoteLine


def _run_on_each(modeladmin, request, queryset, operation, done_message):
    done = 0
    for document in queryset.order_by("pk"):
        try:
            operation(document, user=request.user)
        except ValidationError as error:
            modeladmin.message_user(
                request, f"{document}: {' '.join(error.messages)}", messages.ERROR
            )
        else:
            done += 1
    if done:
        modeladmin.message_user(request, done_message(done), messages.SUCCESS)


@company_action(Action.SEND, description=_("Send (issue) the selected drafts"))
def send_selected(modeladmin, request, queryset):
    _run_on_each(
        modeladmin, request, queryset, services.send_document,
        lambda n: ngettext("%d document issued.", "%d documents issued.", n) % n,
    )


class DocumentAdmin(CompanyScopedAdmin):
    list_display = ["__str__", "company", "client", "state", "issue_date", "total", "currency"]
    list_filter = ["state", "company"]
    search_fields = ["number", "client__name"]
    list_select_related = ["company", "client"]
    date_hierarchy = "created_at"
    actions = [send_selected]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_issued:
            return [f.name for f in self.model._meta.fields if f.name != "id"]
        return ["state", "number_preview", "subtotal", "tax_total", "total"]

    @admin.display(description=_("number"))
    def number_preview(self, obj):
        if obj is None or obj.pk is None:
            return _("assigned when the document is sent")
        return _("Draft — number on send: %(number)s (preview)") % {
            "number": preview_number(obj)
        }

    def has_change_permission(self, request, obj=None):
        # An issued document is shown, never saved: no Save button that could only fail.
        if obj is not None and obj.is_issued:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_issued:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        # One by one, so that the model refuses issued documents with its own message.
        for document in queryset:
            document.delete()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.instance.is_draft:
            form.instance.update_totals()


@company_action(Action.RECORD_PAYMENT,
                description=_("Mark the selected invoices paid in full (a payment of the open "
                              "amount, today, method “Other”)"))
def mark_paid_selected(modeladmin, request, queryset):
    _run_on_each(
        modeladmin, request, queryset, services.mark_paid,
        lambda n: ngettext("%d invoice marked paid.", "%d invoices marked paid.", n) % n,
    )


@company_action(Action.CANCEL,
                description=_("Cancel the selected invoices (issues their credit notes)"))
def cancel_selected(modeladmin, request, queryset):
    def cancel(invoice, user):
        with translation.override(invoice.client.document_language):  # printed for the client
            reason = _("Cancelled in the admin by %(user)s") % {"user": user}
        return services.cancel_invoice(invoice, user=user, reason=reason)

    _run_on_each(
        modeladmin, request, queryset, cancel,
        lambda n: ngettext("%d invoice cancelled.", "%d invoices cancelled.", n) % n,
    )


@admin.register(Invoice)
class InvoiceAdmin(DocumentAdmin):
    inlines = [InvoiceLineInline]
    actions = [send_selected, mark_paid_selected, cancel_selected]


@admin.register(CreditNote)
class CreditNoteAdmin(DocumentAdmin):
    inlines = [CreditNoteLineInline]
    raw_id_fields = ["invoice"]


@admin.register(Quote)
class QuoteAdmin(DocumentAdmin):
    """Quotes are sent here as in the app; accepting one drafts its invoice on its page."""

    inlines = [QuoteLineInline]
    list_display = ["__str__", "company", "client", "state", "issue_date", "valid_until",
                    "total", "currency"]


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(CompanyScopedAdmin):
    write_action = Action.SEND
    list_display = ["kind", "document_id", "recipient", "status", "created_at", "error"]
    list_filter = ["status", "kind"]
    readonly_fields = [f.name for f in EmailDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(CompanyScopedAdmin):
    """Invitations are sent from the members page (which e-mails the link); here, read."""

    write_action = Action.MANAGE_MEMBERS
    list_display = ["email", "company", "role", "created_at", "accepted_at", "revoked_at"]
    list_filter = ["company"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(CompanyScopedAdmin):
    """Shown, never written here: payments are recorded and reversed on the invoice's page."""

    write_action = Action.RECORD_PAYMENT

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "company", "date", "amount", "method", "reference",
                    "recorded_by", "is_reversed"]
    list_filter = ["method", "company"]
    search_fields = ["invoice__number", "reference"]
    list_select_related = ["invoice", "company", "recorded_by", "reversal"]
    date_hierarchy = "date"

    @admin.display(boolean=True, description=_("reversed"))
    def is_reversed(self, obj):
        return obj.is_reversed


@admin.register(PaymentReversal)
class PaymentReversalAdmin(ReadOnlyAdmin):
    list_display = ["payment", "company", "reason", "reversed_by", "reversed_at"]
    list_filter = ["company"]
    list_select_related = ["payment", "company", "reversed_by"]


class RecurringLineInline(LineInline):
    model = RecurringLine

    def _editable(self, obj):
        return True  # a template is never issued


class RecurringInvoiceAdminForm(forms.ModelForm):
    """Only someone who may send invoices sets a schedule to send them (as on its page)."""

    may_send = None  # set per request by RecurringInvoiceAdmin.get_form

    def clean(self):
        data = super().clean()
        company = data.get("company")
        if (data.get("mode") == RecurringMode.SEND and company is not None
                and not self.may_send(company.pk)):
            self.add_error("mode", _("Your role does not allow sending invoices: choose "
                                     "\"Create drafts\"."))
        return data


@admin.register(RecurringInvoice)
class RecurringInvoiceAdmin(CompanyScopedAdmin):
    """Schedules of recurring invoices; whoever saves one becomes its owner."""

    form = RecurringInvoiceAdminForm
    list_display = ["name", "company", "client", "frequency", "mode", "active",
                    "last_period"]
    list_filter = ["active", "frequency", "mode", "company"]
    search_fields = ["name", "client__name"]
    list_select_related = ["company", "client"]
    raw_id_fields = ["client"]
    readonly_fields = ["owner", "last_period", "last_error", "last_error_at"]
    inlines = [RecurringLineInline]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.may_send = staticmethod(lambda company_id: user_can(request.user, company_id,
                                                                  Action.SEND))
        return form

    def save_model(self, request, obj, form, change):
        obj.owner = request.user
        super().save_model(request, obj, form, change)


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    """Written by the reminder runs (billing.reminders); read here."""

    write_action = Action.SEND
    list_display = ["invoice", "company", "step", "due_on", "skipped", "created_at"]
    list_filter = ["skipped", "company"]
    search_fields = ["invoice__number"]
    list_select_related = ["invoice", "company"]
