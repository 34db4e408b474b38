import re
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.forms import inlineformset_factory
from django.utils import timezone, translation
from django.utils.formats import get_format, localize
from django.utils.translation import gettext_lazy as _

from counters.models import MAX_PADDING, IssuedNumber, NumberingSettings

from . import formats, money
from .einvoice.codes import CURRENCIES, TaxCategory, UnitCode
from .models import (
    CLIENT_CODE_RE,
    DATE_VALIDATORS,
    MAX_AMOUNT,
    REASON_MAX_LENGTH,
    REFERENCE_MAX_LENGTH,
    Client,
    Company,
    CreditNote,
    CreditNoteLine,
    DocumentState,
    Invoice,
    InvoiceLine,
    Membership,
    PaymentMethod,
    Quote,
    QuoteLine,
    RecurringInvoice,
    RecurringLine,
    RecurringMode,
    UserPreferences,
)
from .services import CreditLine, uncredited_by_group

# The most lines a document may have: its page and its PDF stay quick to make.
MAX_LINES = 200
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


PARTY_FIELDS = ["name", "street", "postal_code", "city", "country", "vat_id",
                "endpoint_scheme", "endpoint_id"]


def offer_series(form, company_id, empty_label):
    """
    Let ``form`` choose one of the company's numbering series when it has more than one
    (``empty_label``: what choosing none means); with a single series the field is left
    out. A request that leaves the field out keeps the object's series (see
    ``kept_series``).
    """
    series = list(NumberingSettings.objects.filter(company_id=company_id))
    if len(series) < 2:
        del form.fields["series"]
        return
    field = form.fields["series"]
    field.queryset = NumberingSettings.objects.filter(company_id=company_id)
    field.empty_label = empty_label % {
        "default": next((s.name for s in series if s.is_default), "")}


def kept_series(form):
    """The series ``form`` chose, or its object's when the request left the field out."""
    if form.add_prefix("series") not in form.data:
        return form.instance.series
    return form.cleaned_data["series"]


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = [*PARTY_FIELDS[:1], "code", "email", "language", "series", *PARTY_FIELDS[1:],
                  "reference", "attach_ubl"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        offer_series(self, self.instance.company_id, _("The default series (%(default)s)"))

    def clean_series(self):
        return kept_series(self)

    def clean_code(self):
        """Upper case; unique within the company (the database refuses a repeat too)."""
        code = (self.cleaned_data.get("code") or "").strip().upper()
        if code and not CLIENT_CODE_RE.match(code):
            raise forms.ValidationError(
                _("Use capital letters, digits and hyphens only (e.g. ACME or ACME-FR)."),
                code="invalid")
        company_id = self.instance.company_id
        if (self.instance.pk and code != self.instance.code
                and IssuedNumber.objects.filter(company_id=company_id,
                                                client_id=self.instance.pk).exists()):
            # Its counter goes by the client, its numbers print the code: a new code (or
            # the old one given to another client) would print numbers already issued.
            raise forms.ValidationError(
                _("This client's code is printed in numbers already issued with a per-client "
                  "counter: it cannot change."), code="code_in_use")
        if code and company_id and Client.objects.filter(company_id=company_id, code=code) \
                .exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another client of this company has the code "
                                          "%(code)s.") % {"code": code}, code="unique")
        return code


class CompanyForm(forms.ModelForm):
    """The company's own details: what its documents and e-invoices say about the seller."""

    class Meta:
        model = Company
        fields = [*PARTY_FIELDS, "registration_id", "email", "iban", "bic", "currency",
                  "payment_terms_days", "reminder_days", "locale", "einvoicing"]

    def clean_currency(self):
        return clean_currency_code(self.cleaned_data["currency"])


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = UserPreferences
        fields = ["language"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("Your browser's language"))] + [
            choice for choice in self.fields["language"].choices if choice[0]]


def prefill(form, given, **values):
    """Show ``values`` in a new object's ``form``, except what the caller's ``given`` initial
    sets. (A ModelForm's initial starts from the unsaved object's field defaults: the
    model's EUR, an empty date, which ``setdefault`` would keep.)"""
    for name, value in values.items():
        if name not in (given or {}):
            form.initial[name] = value


class DocumentForm(forms.ModelForm):
    """The editable part of a draft. The company comes from the request, never the form."""

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["client"].queryset = Client.objects.filter(company=company)
        if not self.instance.pk:
            prefill(self, kwargs.get("initial"), currency=company.currency)
        offer_series(self, company.pk,
                     _("The client's series, else the default (%(default)s)"))

    def clean_series(self):
        return kept_series(self)

    def clean_currency(self):
        return clean_currency_code(self.cleaned_data["currency"])


def clean_currency_code(value):
    currency = value.strip().upper()
    if currency not in CURRENCIES:
        raise forms.ValidationError(_("Use a three-letter currency code such as EUR."))
    return currency


class InvoiceForm(DocumentForm):
    class Meta:
        model = Invoice
        fields = ["client", "series", "due_date", "currency", "buyer_reference", "notes"]
        widgets = {"due_date": DATE_INPUT, "notes": forms.Textarea(attrs={"rows": 3})}

    def clean_due_date(self):
        due_date = self.cleaned_data["due_date"]
        # An invoice is dated the day it is sent: it cannot fall due before. (A date set
        # earlier and left as it is stays: the draft can still be sent, and changed.)
        if due_date is not None and "due_date" in self.changed_data \
                and due_date < timezone.localdate():
            raise forms.ValidationError(_("An invoice cannot fall due on a day that has "
                                          "passed: it is dated the day it is sent."),
                                        code="due_date_past")
        return due_date


class CreditNoteForm(DocumentForm):
    class Meta:
        model = CreditNote
        fields = ["client", "series", "invoice", "reason", "currency", "buyer_reference",
                  "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, company=company, **kwargs)
        self.fields["invoice"].queryset = (
            Invoice.objects.filter(company=company)
            .exclude(state=DocumentState.DRAFT)
            .select_related("client")
            .order_by("-issue_date", "-id")
        )
        self.fields["invoice"].label_from_instance = lambda inv: f"{inv.number} — {inv.client}"


class QuoteForm(DocumentForm):
    class Meta:
        model = Quote
        fields = ["client", "series", "valid_until", "currency", "buyer_reference", "notes"]
        widgets = {"valid_until": DATE_INPUT, "notes": forms.Textarea(attrs={"rows": 3})}

    def clean_valid_until(self):
        valid_until = self.cleaned_data["valid_until"]
        if valid_until is not None and valid_until < timezone.localdate():
            raise forms.ValidationError(_("A quote cannot be valid until a day that has "
                                          "passed."))
        return valid_until


LINE_FIELDS = ["description", "quantity", "unit_code", "unit_price", "tax_category", "tax_rate",
               "tax_exemption_reason", "tax_exemption_code"]
# Quantities and amounts are typed as text in the user's language and read the same way
# ("10,50" in French is 10.50; a point is read too): a number input would drop a comma
# it does not expect, without a word, and 10,50 would become 1050.
DECIMAL_INPUT = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
# The whole part of a number grouped with points, as German writes it: 1.234 or 12.500.000.
POINT_GROUPS = re.compile(r"[+-]?[1-9]\d{0,2}(\.\d{3})+")
# Spaces that group thousands as French writes them (the page itself writes U+202F).
GROUPING_SPACES = re.compile(r"[ \u00a0\u202f]")


class TypedDecimalField(forms.DecimalField):
    """
    A decimal typed in the page's language, as the page writes numbers. Where decimals take a
    comma (French, German…), thousands may be grouped with spaces or points ("1 234,50",
    "1.234,50", "12.500.000"); one group of points and no comma, "1.000", may mean a
    thousand as well as one: it is refused with a message rather than read either way.
    Limits in messages are written the language's way too ("1,5", not "1.5", which reads
    as fifteen there).
    """

    widget = DECIMAL_INPUT

    def __init__(self, **kwargs):
        kwargs.setdefault("localize", True)
        super().__init__(**kwargs)

    def to_python(self, value):
        if self.localize and isinstance(value, str) and \
                get_format("DECIMAL_SEPARATOR") == ",":
            value = self.ungrouped(value)
        return super().to_python(value)

    @staticmethod
    def ungrouped(text):
        text = GROUPING_SPACES.sub("", text.strip())
        whole, comma, decimals = text.partition(",")
        if POINT_GROUPS.fullmatch(whole):
            if not comma and whole.count(".") == 1:
                raise forms.ValidationError(
                    _("%(value)s could mean a thousand or one: write 1000 for a thousand, "
                      "or 1,000 with a comma for one.") % {"value": text},
                    code="ambiguous_point")
            whole = whole.replace(".", "")
        return whole + comma + decimals

    def run_validators(self, value):
        try:
            super().run_validators(value)
        except forms.ValidationError as error:
            raise forms.ValidationError([
                forms.ValidationError(each.message, code=each.code, params={
                    name: localize(param) if isinstance(param, Decimal) else param
                    for name, param in (each.params or {}).items()})
                for each in error.error_list]) from None


LINE_NUMBERS = ["quantity", "unit_price", "tax_rate"]
LINE_WIDGETS = {name: DECIMAL_INPUT for name in LINE_NUMBERS}


def read_plainly(*forms):
    """``forms`` (forms or formsets, unbound to a page) reading numbers as the API writes
    them, a point for decimals whatever the request's language."""
    for form in forms:
        for each in getattr(form, "forms", [form]):
            for field in each.fields.values():
                field.localize = False
    return forms


class LineForm(forms.ModelForm):
    """A line of a draft. Its unit and tax category default to a unit at the standard rate
    when the form leaves them out."""

    DEFAULTS = {"unit_code": UnitCode.UNIT, "tax_category": TaxCategory.STANDARD}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.DEFAULTS:
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name, default in self.DEFAULTS.items():
            if name in self.fields and not data.get(name):
                data[name] = default
        return data


class BoundedLinesFormSet(forms.BaseInlineFormSet):
    """
    Lines whose amounts fit the document's columns: a line, and the document's totals,
    never exceed ``MAX_AMOUNT`` (999,999,999,999.99). Refused here with a message, not by
    the database with an error page.
    """

    def kept_forms(self):
        return [f for f in self.forms if getattr(f, "cleaned_data", None)
                and not f.cleaned_data.get("DELETE", False)]

    def clean(self):
        super().clean()
        lines = []
        for form in self.kept_forms():
            data = form.cleaned_data
            if data.get("quantity") is None or data.get("unit_price") is None:
                continue
            line = InvoiceLine(quantity=data["quantity"], unit_price=data["unit_price"],
                               tax_rate=data.get("tax_rate") or 0,
                               tax_category=data.get("tax_category") or "S")
            if abs(money.line_net(line.quantity, line.unit_price)) > MAX_AMOUNT:
                form.add_error("unit_price", too_large())
                return
            lines.append(line)
        totals = money.totals(lines)
        if max(abs(totals.subtotal), abs(totals.tax), abs(totals.total)) > MAX_AMOUNT:
            raise forms.ValidationError(too_large(_("The document's total")), code="too_large")


def too_large(what=None):
    return forms.ValidationError(
        _("%(what)s comes to more than %(max)s, the largest amount a document can hold.")
        % {"what": what or _("This line"), "max": f"{MAX_AMOUNT:,}"}, code="too_large")


class LineFormSetBase(BoundedLinesFormSet):
    # Each row carries its place (ORDER), which the Move up / Move down buttons change.
    ordering_widget = forms.HiddenInput

    def clean(self):
        super().clean()
        if not self.kept_forms():
            raise forms.ValidationError(_("A document needs at least one line."))


def line_formset(model, line_model):
    return inlineformset_factory(
        model, line_model, form=LineForm, formset=LineFormSetBase, fields=LINE_FIELDS,
        widgets=LINE_WIDGETS, localized_fields=LINE_NUMBERS,
        field_classes={name: TypedDecimalField for name in LINE_NUMBERS},
        extra=0, can_delete=True, can_order=True, min_num=0, max_num=MAX_LINES,
        validate_max=True,
    )


InvoiceLineFormSet = line_formset(Invoice, InvoiceLine)
CreditNoteLineFormSet = line_formset(CreditNote, CreditNoteLine)
QuoteLineFormSet = line_formset(Quote, QuoteLine)


class SendForm(forms.Form):
    email = forms.BooleanField(
        label=_("E-mail it to the client with the PDF attached"), required=False
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class QuoteAnswerForm(forms.Form):
    """Declining or expiring a quote: why, if someone says (kept in its history)."""

    reason = forms.CharField(label=_("Reason (optional)"), max_length=500, required=False)


class DocumentFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100, widget=forms.SearchInput(
        attrs={"placeholder": _("Number or client")}))
    state = forms.ChoiceField(label=_("State"), required=False)
    client = forms.ModelChoiceField(label=_("Client"), queryset=Client.objects.none(),
                                    required=False, empty_label=_("Any"))
    date_from = forms.DateField(label=_("Issued from"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=_("Issued to"), required=False, widget=DATE_INPUT)

    def __init__(self, *args, company, states, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = Client.objects.filter(company=company).only("name")
        self.fields["state"].choices = [("", _("Any"))] + list(states)


class InviteForm(forms.Form):
    """Invite an e-mail address to the company with a role."""

    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices,
                             initial=Membership.Role.ACCOUNTANT)


class RoleForm(forms.Form):
    """Change a member's role."""

    member = forms.ModelChoiceField(label=_("Member"), queryset=Membership.objects.none())
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = (Membership.objects.filter(company=company)
                                          .select_related("user").order_by("user__username"))
        self.fields["member"].label_from_instance = lambda m: m.user.get_username()


class SignUpForm(UserCreationForm):
    """An account made to accept an invitation: its e-mail is the invited address."""

    class Meta(UserCreationForm.Meta):
        fields = ["username"]


class NumberingSettingsForm(forms.ModelForm):
    padding = forms.IntegerField(label=_("padding"), min_value=0, max_value=MAX_PADDING,
                                 initial=4,
                                 help_text=_("The counter is zero-padded to this many digits."))

    class Meta:
        model = NumberingSettings
        fields = ["name", "code", "shared_counter", "invoice_pattern", "credit_note_pattern",
                  "padding", "client_padding", "reset_period", "fiscal_year_start",
                  "quote_pattern", "quotes_share_invoice_counter"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form written before series had names (an API client's, a bookmarked page's)
        # keeps the series' name.
        self.fields["name"].required = self.instance.pk is None

    def clean_name(self):
        return self.cleaned_data["name"] or self.instance.name

    def clean_code(self):
        if self.add_prefix("code") not in self.data:
            return self.instance.code
        return self.cleaned_data["code"]

    def _post_clean(self):
        super()._post_clean()
        # The company is not a field of this form, so the model's checks left out the
        # constraints that hold within it (one name, one code): they are checked here, on
        # the field they concern, with the model's own messages.
        for constraint in NumberingSettings._meta.constraints:
            fields = set(getattr(constraint, "fields", ())) - {"company"}
            if len(fields) != 1 or fields & {"is_default"} or set(self.errors) & fields:
                continue
            try:
                constraint.validate(NumberingSettings, self.instance)
            except forms.ValidationError as error:
                self.add_error(fields.pop(), error)


class CreditForm(forms.Form):
    """
    The one question of the credit page: credit the whole open amount, chosen lines (each
    for some or all of its quantity), or an amount before tax at one of the invoice's rates.
    ``credit_lines`` is then what the credit note will contain (None: the open amount).
    """

    OPEN, LINES, AMOUNT = "open", "lines", "amount"
    what = forms.ChoiceField(choices=[(OPEN, _("The whole open amount")),
                                      (LINES, _("Only these lines:")),
                                      (AMOUNT, _("An amount:"))],
                             initial=OPEN, widget=forms.RadioSelect)
    line = forms.MultipleChoiceField(required=False)
    amount = TypedDecimalField(label=_("Amount before tax"), required=False, max_digits=12,
                               decimal_places=2, min_value=Decimal("0.01"))
    rate = forms.ChoiceField(label=_("Tax rate (%)"), required=False)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)

    def __init__(self, *args, invoice, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice, self.lines = invoice, lines
        self.fields["line"].choices = [(str(item.pk), item.description) for item in lines]
        for item in lines:
            self.fields[f"quantity_{item.pk}"] = TypedDecimalField(
                label=_("Quantity to credit"), required=False, initial=item.quantity,
                min_value=Decimal("0.001"), max_value=item.quantity, decimal_places=3)
        # One choice per tax group of the invoice: its rate, and its category when that is
        # not the standard rate (a 0 % line may be zero rated, exempt, reverse charge…).
        self.groups = {}
        for item in sorted(lines, key=lambda item: (item.tax_rate, item.tax_category)):
            key = str(item.tax_rate) if item.tax_category == TaxCategory.STANDARD \
                else f"{item.tax_category} {item.tax_rate}"
            self.groups.setdefault(key, item)
        self.fields["rate"].choices = [
            (key, formats.quantity(item.tax_rate) if item.tax_category == TaxCategory.STANDARD
             else f"{formats.quantity(item.tax_rate)} — {item.get_tax_category_display()}")
            for key, item in self.groups.items()]
        self.fields["rate"].initial = list(self.groups)[-1] if self.groups else None

    def quantity_field(self, item):
        return self[f"quantity_{item.pk}"]

    def clean(self):
        data = super().clean()
        what = data.get("what")
        self.credit_lines = None
        if what == self.OPEN and data.get("line"):
            raise forms.ValidationError(_(
                "You ticked lines but chose the whole open amount: choose one of the two. "
                "Nothing was drafted."), code="ambiguous")
        if what == self.LINES:
            chosen = set(data.get("line") or [])
            self.credit_lines = [
                CreditLine.of(item, quantity=data.get(f"quantity_{item.pk}") or item.quantity)
                for item in self.lines if str(item.pk) in chosen]
            if not self.credit_lines:
                raise forms.ValidationError(_("Choose at least one line to credit."),
                                            code="no_lines")
        if what == self.AMOUNT:
            if "amount" in self.errors or "rate" in self.errors:
                return data  # the field says what is wrong
            if data.get("amount") is None or not data.get("rate"):
                raise forms.ValidationError(_("Say the amount to credit and its tax rate."),
                                            code="no_amount")
            # What is left at the chosen rate: a credit corrects the tax charged at it.
            # (Sending checks the whole invoice again, against the credit notes issued by
            # then.)
            group = self.groups[data["rate"]]
            left = min(self.invoice.uncredited_net(), uncredited_by_group(
                self.invoice, self.lines)[(group.tax_category, group.tax_rate)])
            if data["amount"] > left:
                self.add_error("amount", forms.ValidationError(
                    _("This is more than what is left to credit of %(invoice)s at this rate "
                      "(%(left)s before tax).") % {
                        "invoice": self.invoice.number,
                        "left": formats.money(left, self.invoice.currency)},
                    code="credit_exceeds_invoice"))
                return data
            with translation.override(self.invoice.client.document_language):
                description = str(_("Credit on invoice %(number)s") % {
                    "number": self.invoice.number})  # the client reads it
            self.credit_lines = [CreditLine.of(
                self.groups[data["rate"]], description=description, quantity=Decimal("1"),
                unit_price=data["amount"], unit_code="C62")]
        return data


class PaidInFullForm(forms.Form):
    """Paid in full today: how, and the bank's or the receipt's reference."""

    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices,
                               initial=PaymentMethod.BANK_TRANSFER)
    reference = forms.CharField(label=_("Reference"), required=False,
                                max_length=REFERENCE_MAX_LENGTH)
    id_prefix = "paid"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")  # two such forms on one page
        super().__init__(*args, **kwargs)


class PaymentForm(PaidInFullForm):
    """A payment received against an invoice: some or all of what is left to pay."""

    date = forms.DateField(label=_("Payment date"), widget=DATE_INPUT,
                           validators=DATE_VALIDATORS)
    amount = TypedDecimalField(label=_("Amount"), max_digits=14, decimal_places=2,
                               min_value=Decimal("0.01"), max_value=MAX_AMOUNT)
    field_order = ["date", "amount", "method", "reference"]
    id_prefix = "payment"

    def __init__(self, *args, invoice, open_amount=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        self.open_amount = invoice.open_amount() if open_amount is None else open_amount
        self.fields["date"].initial = timezone.localdate()
        self.fields["amount"].initial = self.open_amount

    def clean_date(self):
        day = self.cleaned_data["date"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("A payment cannot be dated in the future."))
        return day

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount > self.open_amount:
            raise forms.ValidationError(
                _("This is more than what is left to pay (%(open)s): record at most that.")
                % {"open": formats.money(self.open_amount, self.invoice.currency)},
                code="overpayment")
        return amount


class ReverseForm(forms.Form):
    reason = forms.CharField(label=_("Why is this payment reversed?"),
                             max_length=REASON_MAX_LENGTH)


class RecurringInvoiceForm(forms.ModelForm):
    """
    A recurring schedule and what its invoices say. The company comes from the request;
    only someone who may send invoices may choose "create and send" (its invoices are issued
    in the name of whoever saved the schedule last).
    """

    class Meta:
        model = RecurringInvoice
        fields = ["name", "client", "series", "frequency", "day_of_month", "start_date",
                  "end_date", "mode", "email", "currency", "buyer_reference", "notes"]
        widgets = {"start_date": DATE_INPUT, "end_date": DATE_INPUT,
                   "notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, company, may_send, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.may_send = may_send
        self.fields["client"].queryset = Client.objects.filter(company=company)
        if not self.instance.pk:
            prefill(self, kwargs.get("initial"), currency=company.currency,
                    start_date=timezone.localdate())
        offer_series(self, company.pk,
                     _("The client's series, else the default (%(default)s)"))

    def clean_series(self):
        return kept_series(self)

    def clean_currency(self):
        return clean_currency_code(self.cleaned_data["currency"])

    def clean_mode(self):
        mode = self.cleaned_data["mode"]
        if mode == RecurringMode.SEND and not self.may_send:
            raise forms.ValidationError(
                _("Your role does not allow sending invoices: choose \"Create drafts\"."))
        return mode


RecurringLineFormSet = line_formset(RecurringInvoice, RecurringLine)
