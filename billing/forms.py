from django import forms
from django.db import models
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from counters.models import NumberingSettings

from .models import (
    Client,
    CreditNote,
    CreditNoteLine,
    DocumentState,
    Invoice,
    InvoiceLine,
    Membership,
    UserPreferences,
)

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["name", "email", "language", "address", "vat_id"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = UserPreferences
        fields = ["language"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("Your browser's language"))] + [
            choice for choice in self.fields["language"].choices if choice[0]]


class DocumentForm(forms.ModelForm):
    """The editable part of a draft. The company comes from the request, never the form."""

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["client"].queryset = Client.objects.filter(company=company)
        if not self.instance.pk:
            self.initial.setdefault("currency", company.currency)

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError(_("Use a three-letter currency code such as EUR."))
        return currency


class InvoiceForm(DocumentForm):
    class Meta:
        model = Invoice
        fields = ["client", "due_date", "currency", "notes"]
        widgets = {"due_date": DATE_INPUT, "notes": forms.Textarea(attrs={"rows": 3})}


class CreditNoteForm(DocumentForm):
    class Meta:
        model = CreditNote
        fields = ["client", "invoice", "reason", "currency", "notes"]
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


LINE_FIELDS = ["description", "quantity", "unit_price", "tax_rate"]
LINE_WIDGETS = {
    "quantity": forms.NumberInput(attrs={"step": "0.001", "min": "0.001"}),
    "unit_price": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    "tax_rate": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "100"}),
}


class LineFormSetBase(forms.BaseInlineFormSet):
    # Each row carries its place (ORDER), which the Move up / Move down buttons change.
    ordering_widget = forms.HiddenInput

    def clean(self):
        super().clean()
        kept = [f for f in self.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE", False)]
        if not kept:
            raise forms.ValidationError(_("A document needs at least one line."))


def line_formset(model, line_model):
    return inlineformset_factory(
        model, line_model, formset=LineFormSetBase, fields=LINE_FIELDS, widgets=LINE_WIDGETS,
        extra=0, can_delete=True, can_order=True, min_num=0,
    )


InvoiceLineFormSet = line_formset(Invoice, InvoiceLine)
CreditNoteLineFormSet = line_formset(CreditNote, CreditNoteLine)


class SendForm(forms.Form):
    email = forms.BooleanField(
        label=_("E-mail it to the client with the PDF attached"), required=False
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class DocumentFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, widget=forms.SearchInput(
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


class MemberForm(forms.Form):
    """Add an existing user to the company, or change a member's role."""

    user = forms.CharField(label=_("Username or e-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices,
                             initial=Membership.Role.ACCOUNTANT)

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.company = company

    def clean_user(self):
        from django.contrib.auth import get_user_model

        value = self.cleaned_data["user"].strip()
        users = get_user_model().objects.filter(
            models.Q(username__iexact=value) | models.Q(email__iexact=value), is_active=True)
        if users.count() != 1:
            raise forms.ValidationError(
                _("No single active user has that username or e-mail address."))
        return users.get()


class NumberingSettingsForm(forms.ModelForm):
    class Meta:
        model = NumberingSettings
        fields = ["shared_counter", "invoice_pattern", "credit_note_pattern", "padding",
                  "reset_period"]
