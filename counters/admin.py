from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from .models import (
    REASON_MAX_LENGTH,
    ClientSequence,
    IssuedNumber,
    NumberingSettings,
    NumberingSettingsChange,
    NumberJump,
    Sequence,
)
from .services import (
    delete_series,
    make_default_series,
    save_numbering_settings,
    series_is_used,
    set_next_number,
)

# The actions the admin asks about (the host app's permission rule knows them all).
READ = "read"
MANAGE_NUMBERING = "manage_numbering"


def admin_companies(request, action=READ):
    """
    The companies where ``request.user`` may do ``action`` in the admin, or None for all of
    them: the host app's one permission rule, through ``settings.COUNTERS_ADMIN_COMPANIES``.
    """
    hook = getattr(settings, "COUNTERS_ADMIN_COMPANIES", None)
    return import_string(hook)(request, action) if hook else None


def company_action(required, **options):
    """
    An admin action that needs ``required`` in each selected object's company: it runs on
    the objects whose company allows it and names those it left out. ``options`` go to
    ``admin.action`` (description, ...).
    """

    def decorate(function):
        @admin.action(**options)
        @wraps(function)
        def run(modeladmin, request, queryset):
            allowed = modeladmin.permitted(request, queryset, required)
            refused = queryset.count() - allowed.count()
            if refused:
                modeladmin.message_user(
                    request, _("Your role does not allow this for %(count)d of the selected "
                               "objects; they were left as they were.") % {"count": refused},
                    messages.ERROR,
                )
            if not allowed.exists():
                return None
            return function(modeladmin, request, allowed)

        run.company_action = required
        return run

    return decorate


class CompanyScopedAdmin(admin.ModelAdmin):
    """
    Staff see only the companies ``admin_companies`` gives them, in lists, forms and
    actions alike; a superuser sees all. What they may do there is what their role allows:
    ``read_action`` to see, ``write_action`` to add, change and delete, and each action's
    ``company_action`` (see ``company_action``) to run it.
    """

    company_path = "company"
    read_action = READ
    write_action = "create"

    def company_id_of(self, obj):
        if self.company_path == "pk":
            return obj.pk
        return getattr(obj, f"{self.company_path}_id")

    def allows(self, request, action, obj=None):
        """Whether the user may do ``action`` on ``obj`` (None: in at least one company)."""
        companies = admin_companies(request, action)
        if companies is None:
            return True
        if obj is None:
            return companies.exists()
        return companies.filter(pk=self.company_id_of(obj)).exists()

    def permitted(self, request, queryset, action):
        """The objects of ``queryset`` in companies that allow ``action``."""
        companies = admin_companies(request, action)
        if companies is None:
            return queryset
        return queryset.filter(**{f"{self.company_path}__in": companies})

    def get_queryset(self, request):
        return self.permitted(request, super().get_queryset(request), self.read_action)

    def get_actions(self, request):
        # An action the user's roles allow in no company is not offered at all.
        return {name: entry for name, entry in super().get_actions(request).items()
                if not hasattr(entry[0], "company_action")
                or self.allows(request, entry[0].company_action)}

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self.allows(
            request, self.read_action, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.allows(request, self.write_action)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.allows(
            request, self.write_action, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.allows(
            request, self.write_action, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Objects are put only in (and linked only to) companies the user may write to.
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        companies = admin_companies(request, self.write_action)
        if field is None or companies is None:
            return field
        related = db_field.related_model
        if related._meta.label == settings.COUNTERS_COMPANY_MODEL:
            field.queryset = field.queryset.filter(pk__in=companies)
        elif any(f.name == "company" for f in related._meta.fields):
            field.queryset = field.queryset.filter(company__in=companies)
        return field


class CompanyScopedInline(admin.options.InlineModelAdmin):
    """
    An inline of a ``CompanyScopedAdmin``: its rows are read with the parent's
    ``read_action`` and added, changed or deleted with ``write_action`` (by default the
    parent's), in the parent's company.
    """

    write_action = None

    def _parent_allows(self, request, action, obj):
        parent = self.admin_site._registry[self.parent_model]
        return parent.allows(request, action or parent.write_action, obj)

    def has_view_permission(self, request, obj=None):
        parent = self.admin_site._registry[self.parent_model]
        return super().has_view_permission(request, obj) and self._parent_allows(
            request, parent.read_action, obj)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._parent_allows(
            request, self.write_action, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._parent_allows(
            request, self.write_action, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._parent_allows(
            request, self.write_action, obj)


class ReadOnlyAdmin(CompanyScopedAdmin):
    """Records nobody may add, change or delete, not even a superuser."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@company_action(MANAGE_NUMBERING, description=_("Make the default series"))
def make_default_action(modeladmin, request, queryset):
    if queryset.count() != 1:
        modeladmin.message_user(request, _("Choose exactly one series."), messages.ERROR)
        return
    numbering = queryset.get()
    make_default_series(numbering, user=request.user)
    modeladmin.message_user(request, _("%(series)s is now the default series.") % {
        "series": numbering}, messages.SUCCESS)


@admin.register(NumberingSettings)
class NumberingSettingsAdmin(CompanyScopedAdmin):
    write_action = MANAGE_NUMBERING
    list_display = ["name", "company", "code", "is_default", "shared_counter",
                    "invoice_pattern", "credit_note_pattern", "quote_pattern",
                    "quotes_share_invoice_counter", "padding", "client_padding",
                    "reset_period", "fiscal_year_start"]
    list_filter = ["company"]
    list_select_related = ["company"]
    actions = [make_default_action]

    def get_readonly_fields(self, request, obj=None):
        # A series stays with its company: its books are there.
        return ["is_default", "company"] if obj is not None else ["is_default"]

    def save_model(self, request, obj, form, change):
        # The service validates again under a row lock, records the change and carries
        # values over when the counter layout changes.
        save_numbering_settings(obj, user=request.user)

    def get_actions(self, request):
        # One at a time, through delete_series: the default series and a series with
        # numbers are kept.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return (obj is not None and not obj.is_default and not series_is_used(obj)
                and super().has_delete_permission(request, obj))

    def delete_model(self, request, obj):
        delete_series(obj, user=request.user)


class NextNumberForm(forms.Form):
    next_value = forms.IntegerField(label=_("Next value"), min_value=1)
    reason = forms.CharField(label=_("Reason"), max_length=REASON_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 3}))


@company_action(MANAGE_NUMBERING, description=_("Set the next number (forward only)…"))
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

    write_action = MANAGE_NUMBERING

    def has_change_permission(self, request, obj=None):
        # Needed to run the action; the change form itself shows every field read-only.
        return (request.user.is_superuser or request.user.has_perm("counters.change_sequence")
                ) and self.allows(request, self.write_action, obj)

    def get_readonly_fields(self, request, obj=None):
        return ["company", "series", "period", "last"]


@admin.register(ClientSequence)
class ClientSequenceAdmin(ReadOnlyAdmin):
    """Each client's own counter ({client_counter}): read only, it moves only by issuing."""

    list_display = ["company", "client_id", "series", "period", "last"]
    list_filter = ["series", "company"]
    search_fields = ["=client_id"]
    list_select_related = ["company"]


@admin.register(IssuedNumber)
class IssuedNumberAdmin(ReadOnlyAdmin):
    list_display = ["number", "company", "kind", "series", "period", "value", "client_id",
                    "client_value", "issue_date", "issued_by", "issued_at"]
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
