from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from .models import IssuedNumber, NumberingSettings, NumberingSettingsChange, NumberJump, Sequence
from .services import save_numbering_settings, set_next_number


def admin_companies(request):
    """The companies ``request.user`` administers, or None for all of them."""
    hook = getattr(settings, "COUNTERS_ADMIN_COMPANIES", None)
    return import_string(hook)(request) if hook else None


class CompanyScopedAdmin(admin.ModelAdmin):
    """
    Staff see only the companies ``admin_companies`` gives them, in lists, forms and
    actions alike; a superuser sees all.
    """

    company_path = "company"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        companies = admin_companies(request)
        if companies is None:
            return queryset
        return queryset.filter(**{f"{self.company_path}__in": companies})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        companies = admin_companies(request)
        if field is None or companies is None:
            return field
        related = db_field.related_model
        if related._meta.label == settings.COUNTERS_COMPANY_MODEL:
            field.queryset = field.queryset.filter(pk__in=companies)
        elif any(f.name == "company" for f in related._meta.fields):
            field.queryset = field.queryset.filter(company__in=companies)
        return field


class ReadOnlyAdmin(CompanyScopedAdmin):
    """Records nobody may add, change or delete, not even a superuser."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NumberingSettings)
class NumberingSettingsAdmin(CompanyScopedAdmin):
    list_display = ["company", "shared_counter", "invoice_pattern", "credit_note_pattern",
                    "padding", "reset_period"]
    list_select_related = ["company"]

    def save_model(self, request, obj, form, change):
        # The service validates again under a row lock, records the change and carries
        # values over when the counter layout changes.
        save_numbering_settings(obj, user=request.user)

    def has_delete_permission(self, request, obj=None):
        return False


class NextNumberForm(forms.Form):
    next_value = forms.IntegerField(label=_("Next value"), min_value=1)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


@admin.action(description=_("Set the next number (forward only)…"))
def set_next_number_action(modeladmin, request, queryset):
    if queryset.count() != 1:
        modeladmin.message_user(request, _("Choose exactly one sequence."), messages.ERROR)
        return None
    sequence = queryset.get()
    form = NextNumberForm(request.POST if "apply" in request.POST else None,
                          initial={"next_value": sequence.last + 1})
    if form.is_valid():
        try:
            set_next_number(
                company_id=sequence.company_id, series=sequence.series, period=sequence.period,
                next_value=form.cleaned_data["next_value"], reason=form.cleaned_data["reason"],
                user=request.user,
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            modeladmin.message_user(
                request, _("The next number of %(sequence)s is now %(value)d.") % {
                    "sequence": sequence, "value": form.cleaned_data["next_value"]},
                messages.SUCCESS,
            )
            return None
    return render(request, "admin/counters/set_next_number.html", {
        **modeladmin.admin_site.each_context(request),
        "title": _("Set the next number"),
        "sequence": sequence,
        "form": form,
        "opts": modeladmin.model._meta,
        "action": "set_next_number_action",
    })


@admin.register(Sequence)
class SequenceAdmin(ReadOnlyAdmin):
    list_display = ["company", "series", "period", "last"]
    list_filter = ["series", "company"]
    list_select_related = ["company"]
    actions = [set_next_number_action]

    def has_change_permission(self, request, obj=None):
        # Needed to run the action; the change form itself shows every field read-only.
        return request.user.is_superuser or request.user.has_perm("counters.change_sequence")

    def get_readonly_fields(self, request, obj=None):
        return ["company", "series", "period", "last"]


@admin.register(IssuedNumber)
class IssuedNumberAdmin(ReadOnlyAdmin):
    list_display = ["number", "company", "kind", "series", "period", "value", "issue_date",
                    "issued_by", "issued_at"]
    list_filter = ["kind", "series", "company"]
    search_fields = ["number"]
    list_select_related = ["company", "issued_by"]


@admin.register(NumberJump)
class NumberJumpAdmin(ReadOnlyAdmin):
    list_display = ["company", "series", "period", "first_value", "last_value", "reason",
                    "created_by", "created_at"]
    list_select_related = ["company", "created_by"]


@admin.register(NumberingSettingsChange)
class NumberingSettingsChangeAdmin(ReadOnlyAdmin):
    list_display = ["company", "changed_by", "changed_at", "old", "new"]
    list_select_related = ["company", "changed_by"]
