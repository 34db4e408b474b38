"""
Folio's documents: companies, clients, invoices and credit notes with their lines.

Quotes are documents too: numbered when sent, frozen from then on, then accepted (which
drafts an invoice from them), declined or expired.

A document is a draft until it is sent. Sending (``billing.services.send_document``) is the
only way to give it a number; from then on it is never edited or deleted (the model refuses,
and database triggers refuse what bypasses the model): it is corrected by a credit note.
"""

import contextlib
import json
import re
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from stdnum import bic, iban

from counters.models import CLIENT_REF_MAX_LENGTH, NUMBER_MAX_LENGTH, Kind
from counters.services import allocate_number

from . import money
from . import snapshot as snapshots
from .einvoice.codes import ENDPOINT_SCHEME_CHOICES, TaxCategory, UnitCode


def validate_iban(value):
    if not iban.is_valid(value):
        raise ValidationError(_("This is not a valid IBAN."), code="invalid_iban")


def validate_bic(value):
    if not bic.is_valid(value):
        raise ValidationError(_("This is not a valid BIC."), code="invalid_bic")

# The dates a person may enter (due, valid-until, payment, schedule dates): a year such as
# 9999 is a typo, and the dates computed from it (reminders, periods) would not exist.
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2999, 12, 31)
DATE_VALIDATORS = [MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)]

MAX_REMINDER_STEPS = 10
MAX_REMINDER_DAYS = 365


def parse_reminder_days(text: str) -> list[int]:
    """
    "3, 14, 30" -> [3, 14, 30]: whole days after the due date, from 1 to 365, each once, at
    most ten; sorted. Empty: []. Anything else is refused with a message saying why.
    """
    parts = [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
    if not all(part.isdecimal() and part.isascii() for part in parts):
        raise ValidationError(_("Give whole numbers of days separated by commas, such as "
                                "\"3, 14, 30\"."), code="reminder_days_format")
    days = [int(part) for part in parts]
    if any(not 1 <= day <= MAX_REMINDER_DAYS for day in days):
        raise ValidationError(_("Each reminder comes 1 to %(max)s days after the due date.")
                              % {"max": MAX_REMINDER_DAYS}, code="reminder_days_range")
    if len(set(days)) != len(days):
        raise ValidationError(_("Give each number of days once."), code="reminder_days_twice")
    if len(days) > MAX_REMINDER_STEPS:
        raise ValidationError(_("At most %(max)s reminders.") % {"max": MAX_REMINDER_STEPS},
                              code="reminder_days_many")
    return sorted(days)


def validate_reminder_days(value):
    parse_reminder_days(value)


# Bounds of free text: a page, an e-mail and a PDF stay small whatever is typed.
NOTES_MAX_LENGTH = 2000
# The largest amount a document's columns hold (max_digits=14, decimal_places=2).
MAX_AMOUNT = Decimal("999999999999.99")


def length_at_most(field, limit, name):
    """A check constraint: ``field`` has at most ``limit`` characters, in the database too."""
    return models.CheckConstraint(
        condition=models.lookups.LessThanOrEqual(models.functions.Length(field), limit),
        name=name,
    )


class Party(models.Model):
    """
    What a seller (Company) and a buyer (Client) share: a name, a postal address, a VAT
    number and an electronic address, named after EN 16931's fields.
    """

    name = models.CharField(_("name"), max_length=200)
    street = models.CharField(_("street"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    country = CountryField(_("country"), blank=True)
    vat_id = models.CharField(_("VAT number"), max_length=32, blank=True)
    endpoint_scheme = models.CharField(
        _("electronic address scheme"), max_length=4, blank=True,
        choices=ENDPOINT_SCHEME_CHOICES,
        help_text=_("The kind of identifier of the Peppol electronic address (EAS code)."))
    endpoint_id = models.CharField(
        _("electronic address"), max_length=100, blank=True,
        help_text=_("Where e-invoices are delivered on the Peppol network, such as a "
                    "company number."))

    class Meta:
        abstract = True

    def __str__(self):
        return self.name

    @property
    def address_lines(self):
        return snapshots.address_lines(self)

    def clean(self):
        from .einvoice.checks import compact_endpoint, endpoint_is_valid, vat_id_problem

        # Stored as the norms write them: no spaces, capitals.
        self.vat_id = "".join(self.vat_id.split()).upper()
        self.endpoint_id = compact_endpoint(self.endpoint_scheme, self.endpoint_id)
        errors = {}
        if vat_id_problem(self.vat_id):
            errors["vat_id"] = vat_id_problem(self.vat_id)
        if bool(self.endpoint_scheme) != bool(self.endpoint_id):
            errors["endpoint_id" if self.endpoint_scheme else "endpoint_scheme"] = _(
                "Give both the scheme and the electronic address, or neither.")
        elif self.endpoint_id and not endpoint_is_valid(self.endpoint_scheme,
                                                        self.endpoint_id):
            errors["endpoint_id"] = _("This is not a valid %(scheme)s identifier.") % {
                "scheme": self.get_endpoint_scheme_display()}
        if errors:
            raise ValidationError(errors)


class Company(Party):
    email = models.EmailField(_("e-mail"), blank=True)
    registration_id = models.CharField(
        _("registration number"), max_length=32, blank=True,
        help_text=_("The company's number in its country's trade register."))
    iban = models.CharField(_("IBAN"), max_length=34, blank=True,
                            validators=[validate_iban])
    bic = models.CharField(_("BIC"), max_length=11, blank=True, validators=[validate_bic])
    currency = models.CharField(_("default currency"), max_length=3, default="EUR")
    payment_terms_days = models.PositiveSmallIntegerField(_("payment terms (days)"), default=30)
    locale = models.CharField(
        _("language and formats"), max_length=10, choices=settings.LANGUAGES, default="en",
        help_text=_("Dates and numbers are shown in this locale."),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="companies"
    )

    reminder_days = models.CharField(
        _("reminders (days after the due date)"), max_length=100, blank=True,
        validators=[validate_reminder_days],
        help_text=_("When overdue invoices get a reminder e-mail, in days after their due "
                    "date, such as \"3, 14, 30\". Empty: no reminders."))

    einvoicing = models.BooleanField(
        _("electronic invoices"), default=True,
        help_text=_("Check before sending that each document makes a valid e-invoice "
                    "(EN 16931, Peppol), and attach it to the PDF (Factur-X)."))

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def clean(self):
        super().clean()
        self.iban, self.bic = iban.compact(self.iban), bic.compact(self.bic)
        # Stored as "3, 14, 30" however it was typed; when it cannot be read, the field's
        # validator says why.
        with contextlib.suppress(ValidationError):
            self.reminder_days = ", ".join(map(str, parse_reminder_days(self.reminder_days)))

    @property
    def reminder_steps(self) -> list[int]:
        """The reminder steps, in days after the due date, ascending (none: no reminders)."""
        try:
            return parse_reminder_days(self.reminder_days)
        except ValidationError:
            return []


class Membership(models.Model):
    class Role(models.TextChoices):  # highest first (set_membership relies on it)
        OWNER = "owner", _("Owner")
        ACCOUNTANT = "accountant", _("Accountant")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    company = models.ForeignKey(Company, on_delete=models.CASCADE)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.OWNER)
    # The company a user lands in is the one they used last (never the first by name).
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("membership")
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="billing_membership_unique"),
        ]

    def __str__(self):
        return f"{self.user} @ {self.company} ({self.get_role_display()})"

    def can(self, action):
        """Whether this membership allows ``action`` (``billing.permissions``)."""
        from .permissions import can

        return can(self, action)

    @property
    def can_edit(self):
        """Create and edit drafts (the pages show their buttons on it)."""
        return self.can("create")

    @property
    def can_send(self):
        """Send drafts (one, or many in a month-end run)."""
        return self.can("send")

    @property
    def can_manage(self):
        """Members (and numbering settings)."""
        return self.can("manage_members")


class Invitation(models.Model):
    """
    An owner's invitation to an e-mail address to join a company with a role. Accepted
    through a signed, expiring link (``billing.invitations``); revocable while pending.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=20, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("sent"), auto_now_add=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Membership.Role.values),
                                   name="billing_invitation_role_valid"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="billing_invitation_accepted_or_revoked"),
        ]

    def __str__(self):
        return f"{self.email} → {self.company} ({self.get_role_display()})"

    @property
    def is_pending(self):
        return self.accepted_at is None and self.revoked_at is None


class UserPreferences(models.Model):
    """What one user chooses for themselves, whatever the company: the app's language."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
        related_name="folio_preferences",
    )
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True,
        help_text=_("The language of the app's pages. Empty: your browser's language."),
    )

    class Meta:
        verbose_name = _("user preferences")
        verbose_name_plural = _("user preferences")

    def __str__(self):
        return str(self.user)


# A client code: capital letters, digits and inner hyphens (ACME, ACME-FR).
CLIENT_CODE_RE = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


class Client(Party):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="clients")
    code = models.CharField(
        _("client code"), max_length=CLIENT_REF_MAX_LENGTH, blank=True,
        validators=[RegexValidator(CLIENT_CODE_RE, _(
            "Use capital letters, digits and hyphens only (e.g. ACME or ACME-FR)."))],
        help_text=_("A short code for this client, printed by {client_ref} in numbers with "
                    "a per-client counter (e.g. ACME). Unique within the company."))
    email = models.EmailField(_("e-mail"), blank=True)
    reference = models.CharField(
        _("buyer reference"), max_length=100, blank=True,
        help_text=_("The reference this client wants on its invoices (a purchase order, a "
                    "cost centre, a Leitweg-ID)."))
    attach_ubl = models.BooleanField(
        _("e-mail the UBL too"), default=False,
        help_text=_("Attach the Peppol UBL file to the e-mails, beside the PDF."))
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True,
        help_text=_("The language of this client's invoices, credit notes and e-mails. "
                    "Empty: the company's language."),
    )
    series = models.ForeignKey(
        "counters.NumberingSettings", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("numbering series"),
        help_text=_("The series this client's documents are numbered in. Empty: the "
                    "company's default series."),
    )

    class Meta:
        verbose_name = _("client")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["company", "name"])]
        constraints = [
            models.UniqueConstraint(fields=["company", "code"], condition=~models.Q(code=""),
                                    name="billing_client_code_unique"),
        ]

    @property
    def document_language(self):
        """The language (and formats) of this client's documents."""
        return self.language or self.company.locale


class DocumentState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


DRAFT = DocumentState.DRAFT


def is_overdue(state, due_date, today):
    """A sent document is overdue once its due date has passed (a paid one never is)."""
    return state == DocumentState.SENT and due_date is not None and due_date < today


class DocumentLocked(ValidationError):
    """An issued document was about to be changed or deleted."""


class Document(ConcurrentTransitionMixin, models.Model):
    """What invoices and credit notes share: parties, state, number, dates, money."""

    kind: str  # a counters.models.Kind, set by each concrete document
    # Whether an issued document of this kind is an EN 16931 invoice (or credit note), with
    # e-invoices checked before sending and exported afterwards.
    is_einvoice_kind = True
    # Columns an issued document may still change; everything else is frozen at send.
    MUTABLE_WHEN_ISSUED = frozenset({"state", "updated_at"})

    # The company and the state have no index of their own: the list indexes of each
    # document model begin with (company, state) and serve them, and sending a document
    # rewrites every index entry of its row, so each index less is less work per issue.
    company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="%(class)ss", verbose_name=_("company"),
        db_index=False,
    )
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="%(class)ss", verbose_name=_("client")
    )
    # Chosen on the draft (empty: the client's series, else the company's default); set to
    # the series it was numbered in when issued.
    series = models.ForeignKey(
        "counters.NumberingSettings", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("numbering series"),
        help_text=_("Empty: the client's series, or else the company's default series."),
    )
    state = FSMField(
        _("state"), default=DRAFT, choices=DocumentState.choices, protected=True
    )
    number = models.CharField(
        _("number"), max_length=NUMBER_MAX_LENGTH, blank=True, default="", editable=False
    )
    sequence_value = models.PositiveBigIntegerField(
        _("sequence value"), null=True, blank=True, editable=False
    )
    issue_date = models.DateField(_("issue date"), null=True, blank=True, editable=False)
    due_date = models.DateField(_("due date"), null=True, blank=True,
                                validators=DATE_VALIDATORS)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    notes = models.TextField(_("notes"), blank=True, max_length=NOTES_MAX_LENGTH)
    buyer_reference = models.CharField(
        _("buyer reference"), max_length=100, blank=True,
        help_text=_("Empty: the client's reference, or else the document's number."))
    subtotal = models.DecimalField(
        _("subtotal"), max_digits=14, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    tax_total = models.DecimalField(
        _("tax"), max_digits=14, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    total = models.DecimalField(
        _("total"), max_digits=14, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    # What the document said when it was issued (billing.snapshot), as canonical JSON; empty
    # for a draft.
    snapshot = models.TextField(_("content at issue"), blank=True, default="", editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]
        constraints = [
            # A draft has no number; an issued document has a number, a value and a date.
            models.CheckConstraint(
                condition=(
                    Q(state=DRAFT, number="", sequence_value__isnull=True, issue_date__isnull=True)
                    | (~Q(state=DRAFT) & ~Q(number="") & Q(sequence_value__isnull=False)
                       & Q(issue_date__isnull=False))
                ),
                name="%(app_label)s_%(class)s_numbered_iff_issued",
            ),
            models.UniqueConstraint(
                fields=["company", "number"],
                condition=~Q(number=""),
                name="%(app_label)s_%(class)s_number_unique",
            ),
            length_at_most("notes", NOTES_MAX_LENGTH, "%(app_label)s_%(class)s_notes_length"),
            # Every total fits its column, on SQLite as on PostgreSQL.
            models.CheckConstraint(
                condition=Q(subtotal__lte=MAX_AMOUNT, subtotal__gte=-MAX_AMOUNT,
                            tax_total__lte=MAX_AMOUNT, tax_total__gte=-MAX_AMOUNT,
                            total__lte=MAX_AMOUNT, total__gte=-MAX_AMOUNT),
                name="%(app_label)s_%(class)s_totals_fit",
            ),
        ]

    def __str__(self):
        return self.number or str(_("Draft %(kind)s #%(id)s") % {
            "kind": self._meta.verbose_name, "id": self.pk
        })

    def save(self, *args, **kwargs):
        self._refuse_if_issued(kwargs.get("update_fields"))
        super().save(*args, **kwargs)
        self._stored_state = self.state

    def delete(self, *args, **kwargs):
        self._refuse_if_issued()
        return super().delete(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_state = instance.__dict__.get("state")
        return instance

    @property
    def content(self) -> snapshots.Content:
        """
        What the document says: as issued (its snapshot) once issued, else as its current
        data. Pages, PDFs, e-mails and exports read this.
        """
        if self.is_issued and self.snapshot:
            return snapshots.read(json.loads(self.snapshot))
        return snapshots.read(snapshots.build(self, list(self.lines.all())))

    @property
    def is_draft(self):
        return self.state == DRAFT

    @property
    def is_issued(self):
        return not self.is_draft

    def _refuse_if_issued(self, update_fields=None):
        stored = getattr(self, "_stored_state", None)
        if stored in (None, DRAFT):
            return
        if update_fields is not None and set(update_fields) <= self.MUTABLE_WHEN_ISSUED:
            return
        raise DocumentLocked(
            _("%(document)s has been issued and can no longer be changed or deleted; "
              "correct it with a credit note.") % {"document": self},
            code="issued",
        )

    def clean_fields(self, exclude=None):
        # The state is protected: only transitions change it, so validation never sets it.
        super().clean_fields(exclude={*(exclude or ()), "state"})

    def clean(self):
        if self.client_id and self.company_id and self.client.company_id != self.company_id:
            raise ValidationError({"client": _("This client belongs to another company.")})
        if self.series_id and self.company_id and self.series.company_id != self.company_id:
            raise ValidationError({"series": _("This series belongs to another company.")})

    # --- Money ------------------------------------------------------------------------------

    def set_totals(self, lines):
        """Set the totals of ``lines`` (``billing.money.totals``) on the document."""
        totals = money.totals(lines)
        self.subtotal, self.tax_total, self.total = totals.subtotal, totals.tax, totals.total
        return totals

    def update_totals(self):
        """Store the totals of the current lines. Drafts only: issued totals are frozen."""
        self.set_totals(self.lines.all())
        self.save(update_fields=["subtotal", "tax_total", "total", "updated_at"])

    def tax_breakdown(self):
        """The lines' tax groups (``billing.money.TaxGroup``), in category and rate order."""
        return money.totals(self.lines.all()).groups

    @property
    def client_ref(self) -> str:
        """The client's code, printed by ``{client_ref}`` in numbers."""
        return self.client.code if self.client_id else ""

    @property
    def issuing_series_id(self):
        """The series this document is (or would be) numbered in: its own choice, else its
        client's, else None for the company's default."""
        if self.series_id is not None:
            return self.series_id
        return self.client.series_id if self.client_id else None

    # --- Lifecycle --------------------------------------------------------------------------

    def complete_for_issue(self):
        """Fill in what an issued document needs and the draft left open."""
        self.buyer_reference = self.buyer_reference or self.client.reference

    def validate_for_issue(self, lines):
        """
        Refuse to issue this document with ``lines``: what the law and Folio require, and,
        when its company makes e-invoices, what a valid e-invoice needs (it cannot be
        corrected once issued).
        """
        if not lines:
            raise ValidationError(_("Add at least one line before sending."), code="no_lines")
        due_date = getattr(self, "due_date", None)
        if due_date is not None and not EARLIEST_DATE <= due_date <= LATEST_DATE:
            # Saved before dates were bounded: reminders could not be dated from it.
            raise ValidationError(_("The due date %(date)s is not one Folio can work with: "
                                    "correct it in the draft.") % {"date": due_date},
                                  code="due_date_range")
        if self.company.einvoicing and self.needs_einvoice():
            from .einvoice.checks import problems

            found = problems(snapshots.read(snapshots.build(self, lines)))
            if found:
                raise ValidationError(found, code="einvoice")

    def needs_einvoice(self):
        """Whether sending this document needs a valid e-invoice (when its company makes
        them)."""
        return self.is_einvoice_kind

    @transition(field="state", source=DRAFT, target=DocumentState.SENT)
    def send(self, lines, user=None):
        """
        Issue the document with ``lines``, its lines as read under the row lock: freeze its
        totals, date it today and, last, give it the next number of its series.

        Only ``billing.services.send_document`` calls this, inside the transaction that
        locked the document and that saves it afterwards: a rollback returns the number.
        """
        totals = self.set_totals(lines)
        self.issue_date = timezone.localdate()
        self.complete_for_issue()
        self.snapshot = snapshots.dumps(snapshots.build(self, lines, totals))
        issued = allocate_number(
            company_id=self.company_id,
            kind=self.kind,
            document_id=self.pk,
            issue_date=self.issue_date,
            total=self.total,
            currency=self.currency,
            snapshot_digest=snapshots.digest(self.snapshot),
            client_id=self.client_id,
            client_ref=self.client_ref,
            series_id=self.issuing_series_id,
            user=user,
        )
        self.series = issued.numbering
        self.number = issued.number
        self.sequence_value = issued.value
        return issued


class LineItem(models.Model):
    description = models.CharField(_("description"), max_length=500)
    quantity = models.DecimalField(
        _("quantity"), max_digits=12, decimal_places=3, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    unit_price = models.DecimalField(
        _("unit price"), max_digits=12, decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
    )
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=5, decimal_places=2, default=Decimal("20.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    unit_code = models.CharField(_("unit"), max_length=3, choices=UnitCode.choices,
                                 default=UnitCode.UNIT)
    tax_category = models.CharField(_("tax category"), max_length=2,
                                    choices=TaxCategory.choices, default=TaxCategory.STANDARD)
    tax_exemption_reason = models.CharField(
        _("exemption reason"), max_length=300, blank=True,
        help_text=_("Why no VAT is charged, as printed on the document."))
    tax_exemption_code = models.CharField(
        _("exemption code"), max_length=30, blank=True,
        help_text=_("The VATEX code of the exemption, such as VATEX-EU-132."))
    position = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(tax_category__in=TaxCategory.values),
                                   name="%(app_label)s_%(class)s_tax_category_valid"),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="%(app_label)s_%(class)s_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="%(app_label)s_%(class)s_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0, tax_rate__lte=100),
                name="%(app_label)s_%(class)s_tax_rate_range",
            ),
            # Only a standard-rate line is taxed (EN 16931 BR-Z-5, BR-E-5, BR-AE-5, …).
            models.CheckConstraint(
                condition=Q(tax_category=TaxCategory.STANDARD) | Q(tax_rate=0),
                name="%(app_label)s_%(class)s_untaxed_category_rate_zero",
            ),
        ]

    def __str__(self):
        return self.description

    def save(self, *args, **kwargs):
        self.document._refuse_if_issued()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.document._refuse_if_issued()
        return super().delete(*args, **kwargs)

    def clean(self):
        from .einvoice.checks import line_problems
        from .einvoice.codes import DEFAULT_EXEMPTION_CODES

        document = getattr(self, "document", None)
        company = getattr(document, "company", None) if document else None
        client = getattr(document, "client", None) if document else None
        self.tax_exemption_code = self.tax_exemption_code.strip().upper()
        implied = DEFAULT_EXEMPTION_CODES.get(self.tax_category, "")
        if (self.tax_exemption_code in DEFAULT_EXEMPTION_CODES.values()
                and self.tax_exemption_code != implied):
            # The exemption another category implied, left from before the category changed.
            self.tax_exemption_code, self.tax_exemption_reason = "", ""
        if implied and not (self.tax_exemption_reason or self.tax_exemption_code):
            # The category says why there is no VAT; the reason is printed for the client.
            with translation.override(client.document_language if client else None):
                self.tax_exemption_code = implied
                self.tax_exemption_reason = str(TaxCategory(self.tax_category).label)
        problems = line_problems(self.tax_category, self.tax_rate, self.tax_exemption_reason,
                                 self.tax_exemption_code,
                                 einvoicing=company is None or company.einvoicing)
        if problems:
            raise ValidationError(problems)

    @property
    def net_amount(self):
        return money.line_net(self.quantity, self.unit_price)

class Invoice(Document):
    kind = Kind.INVOICE

    # The recurring schedule that made this invoice, and the period it was made for
    # (``billing.recurring``); both empty for an invoice made by hand.
    recurring = models.ForeignKey(
        "RecurringInvoice", null=True, blank=True, on_delete=models.PROTECT,
        related_name="invoices", verbose_name=_("recurring schedule"), editable=False)
    recurring_period = models.DateField(_("period"), null=True, blank=True, editable=False)
    # The accepted quote this invoice was drafted from (billing.services.accept_quote).
    quote = models.ForeignKey(
        "Quote", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices",
        verbose_name=_("quote"), editable=False,
    )

    class Meta(Document.Meta):
        verbose_name = _("invoice")
        constraints = [
            *Document.Meta.constraints,
            models.CheckConstraint(condition=Q(state__in=DocumentState.values),
                                   name="billing_invoice_state_valid"),
            # At most one invoice per schedule and period, whoever runs the schedule and
            # however often: what makes a run idempotent and two racing workers safe.
            models.UniqueConstraint(fields=["recurring", "recurring_period"],
                                    condition=Q(recurring__isnull=False),
                                    name="billing_invoice_one_per_period"),
            models.CheckConstraint(
                condition=Q(recurring__isnull=True, recurring_period__isnull=True)
                | Q(recurring__isnull=False, recurring_period__isnull=False),
                name="billing_invoice_recurring_has_period"),
            # A quote is accepted once: one invoice at most is drafted from it.
            models.UniqueConstraint(fields=["quote"], condition=Q(quote__isnull=False),
                                    name="billing_invoice_one_per_quote"),
        ]
        # The lists: newest first, all or by state.
        indexes = [models.Index(fields=["company", "-created_at", "-id"]),
                   models.Index(fields=["company", "state", "-created_at", "-id"])]

    def delete(self, *args, **kwargs):
        # An accepted quote always has its invoice (the database refuses "accepted" without
        # one): the draft drafted from it is edited, not deleted.
        if self.quote_id is not None:
            raise ValidationError(
                _("This draft was made from an accepted quote, which keeps it: edit it "
                  "rather than delete it."), code="from_quote")
        return super().delete(*args, **kwargs)

    def complete_for_issue(self):
        super().complete_for_issue()
        if self.due_date is None:
            self.due_date = self.issue_date + timedelta(days=self.company.payment_terms_days)

    def credited(self) -> tuple[Decimal, Decimal]:
        """(net, total) of the credit notes issued against this invoice."""
        sums = self.credit_notes.exclude(state=DRAFT).aggregate(
            net=models.Sum("subtotal"), total=models.Sum("total"))
        return (money.to_cents(sums["net"] or 0), money.to_cents(sums["total"] or 0))

    def uncredited_net(self) -> Decimal:
        """
        What is left to credit, net of tax. Credits are measured in nets, which add up
        exactly, where totals may differ by the rounding of each document's tax.
        """
        return self.subtotal - self.credited()[0]

    def paid(self) -> Decimal:
        """What the invoice's payments add up to, reversed ones left out."""
        paid = self.payments.filter(reversal__isnull=True).aggregate(s=models.Sum("amount"))
        return money.to_cents(paid["s"] or 0)

    def open_amount(self, paid: Decimal | None = None) -> Decimal:
        """
        What is left to pay: the total less the issued credit notes and the payments
        (``billing.money.open_amount``); nothing once every net has been credited. ``paid``:
        ``self.paid()``, when the caller has it already.
        """
        net, total = self.credited()
        return money.open_amount(total=self.total, subtotal=self.subtotal, credited_net=net,
                                 credited_total=total,
                                 paid=self.paid() if paid is None else paid)

    @transition(field="state", source=DocumentState.SENT, target=DocumentState.PAID)
    def mark_paid(self):
        """Its payments cover it. ``billing.services.record_payment`` saves it."""

    @transition(field="state", source=DocumentState.PAID, target=DocumentState.SENT)
    def reopen(self):
        """
        A payment was reversed: the invoice is open again. ``billing.services.reverse_payment``
        saves it, in the transaction that writes the reversal (the database insists).
        """

    @transition(field="state", source=DocumentState.SENT, target=DocumentState.CANCELLED)
    def cancel(self):
        """Cancel the invoice; ``billing.services.cancel_invoice`` issues its credit note."""


class InvoiceLine(LineItem):
    document = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")

    class Meta(LineItem.Meta):
        verbose_name = _("invoice line")


class CreditNote(Document):
    kind = Kind.CREDIT_NOTE

    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes",
        verbose_name=_("corrected invoice"),
    )
    # Snapshots of the corrected invoice, taken when the credit note is created: the law wants
    # them on the credit note whatever happens to the invoice later.
    invoice_number = models.CharField(
        _("invoice number"), max_length=NUMBER_MAX_LENGTH, blank=True, editable=False
    )
    invoice_issue_date = models.DateField(
        _("invoice date"), null=True, blank=True, editable=False
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)

    class Meta(Document.Meta):
        verbose_name = _("credit note")
        # A credit note is a draft or issued: it is never paid or cancelled itself.
        constraints = [
            *Document.Meta.constraints,
            models.CheckConstraint(condition=Q(state__in=[DRAFT, DocumentState.SENT]),
                                   name="billing_creditnote_state_valid"),
        ]
        # The lists: newest first, all or by state.
        indexes = [models.Index(fields=["company", "-created_at", "-id"]),
                   models.Index(fields=["company", "state", "-created_at", "-id"])]

    def save(self, *args, **kwargs):
        if self.invoice_id and self.is_draft:
            self.invoice_number = self.invoice.number
            self.invoice_issue_date = self.invoice.issue_date
        super().save(*args, **kwargs)

    def needs_einvoice(self):
        # A credit note corrects its invoice as that invoice was issued: one issued without a
        # valid e-invoice (before the company made them) is corrected all the same.
        if self.invoice_id is not None:
            from .einvoice.checks import problems

            return not problems(self.invoice.content)
        return True

    def clean(self):
        super().clean()
        if self.invoice_id is None:
            return
        invoice = self.invoice
        if invoice.company_id != self.company_id:
            raise ValidationError({"invoice": _("This invoice belongs to another company.")})
        if invoice.client_id != self.client_id:
            raise ValidationError(
                {"invoice": _("The credit note and the invoice must have the same client.")}
            )
        if invoice.is_draft:
            raise ValidationError(
                {"invoice": _("Only an issued invoice can be credited; edit the draft instead.")}
            )


class CreditNoteLine(LineItem):
    document = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")

    class Meta(LineItem.Meta):
        verbose_name = _("credit note line")


class QuoteState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")


# How long a quote sent without a valid-until date stays valid.
QUOTE_VALIDITY_DAYS = 30


class Quote(Document):
    """
    An offer to a client: numbered when sent (its own series, or the invoices'), frozen from
    then on, then accepted (``billing.services.accept_quote`` drafts its invoice), declined
    or expired; each keeps its number. Not an EN 16931 invoice: no e-invoice is made of it.
    """

    kind = Kind.QUOTE
    is_einvoice_kind = False

    state = FSMField(_("state"), default=DRAFT, choices=QuoteState.choices, protected=True)
    valid_until = models.DateField(
        _("valid until"), null=True, blank=True, validators=DATE_VALIDATORS,
        help_text=_("Empty: %(days)d days after the quote is sent.") % {
            "days": QUOTE_VALIDITY_DAYS})

    class Meta(Document.Meta):
        verbose_name = _("quote")
        constraints = [
            *Document.Meta.constraints,
            models.CheckConstraint(condition=Q(state__in=QuoteState.values),
                                   name="billing_quote_state_valid"),
            # A sent quote says how long it holds.
            models.CheckConstraint(
                condition=Q(state=DRAFT) | Q(valid_until__isnull=False,
                                             valid_until__gte=models.F("issue_date")),
                name="billing_quote_valid_until_set"),
        ]
        indexes = [models.Index(fields=["company", "-created_at", "-id"]),
                   models.Index(fields=["company", "state", "-created_at", "-id"])]

    def _refuse_if_issued(self, update_fields=None):
        try:
            super()._refuse_if_issued(update_fields)
        except DocumentLocked:
            raise DocumentLocked(
                _("%(document)s has been sent and can no longer be changed or deleted.")
                % {"document": self}, code="issued") from None

    def is_expired_on(self, today) -> bool:
        """Sent and past its valid-until date (expired in fact, until someone says so)."""
        return (self.state == QuoteState.SENT and self.valid_until is not None
                and self.valid_until < today)

    def validate_for_issue(self, lines):
        super().validate_for_issue(lines)
        if self.valid_until is not None and self.valid_until < timezone.localdate():
            raise ValidationError(
                _("The quote's valid-until date has passed: choose a later one."),
                code="valid_until_past")

    def complete_for_issue(self):
        super().complete_for_issue()
        if self.valid_until is None:
            self.valid_until = self.issue_date + timedelta(days=QUOTE_VALIDITY_DAYS)

    @transition(field="state", source=QuoteState.SENT, target=QuoteState.ACCEPTED)
    def accept(self):
        """The client accepted. ``billing.services.accept_quote`` drafts its invoice first."""

    @transition(field="state", source=QuoteState.SENT, target=QuoteState.DECLINED)
    def decline(self):
        """The client declined; the quote keeps its number."""

    @transition(field="state", source=QuoteState.SENT, target=QuoteState.EXPIRED)
    def expire(self):
        """The offer lapsed; the quote keeps its number."""


class QuoteLine(LineItem):
    document = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")

    class Meta(LineItem.Meta):
        verbose_name = _("quote line")


DOCUMENT_MODELS = {Kind.INVOICE: Invoice, Kind.CREDIT_NOTE: CreditNote, Kind.QUOTE: Quote}


def document_model(kind):
    """The model of a kind of document (a ``counters.models.Kind``)."""
    return DOCUMENT_MODELS[Kind(kind)]


class EmailDelivery(models.Model):
    """
    An e-mail of an issued document, written in the transaction that asked for it together
    with the job that sends it (``billing.tasks.deliver_email``). The job tries it up to
    ``FOLIO_EMAIL_ATTEMPTS`` times with growing waits; it ends *sent* or *failed*. A failure
    never un-issues the document.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    document_id = models.BigIntegerField()
    recipient = models.EmailField(_("to"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)  # the last attempt's
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A reminder's e-mail (``billing.reminders``); empty for the e-mail of the document.
    reminder = models.ForeignKey("Reminder", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries", verbose_name=_("reminder"))
    # Set while an attempt runs: a claim older than FOLIO_JOB_LEASE is a dead worker's.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When the pending job is due (now, or after a failed attempt's wait).
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("e-mail delivery")
        verbose_name_plural = _("e-mail deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "document_id"])]

    def __str__(self):
        return f"{self.kind} #{self.document_id} -> {self.recipient}: {self.status}"

    # A delivery due this long ago and still pending has no worker running it: the page
    # says so (`manage.py worker` is not running, or cannot reach the database).
    STALE_AFTER = timedelta(minutes=10)

    @property
    def is_stale(self):
        due = self.next_attempt_at or self.created_at
        return (self.status == self.Status.PENDING and self.claimed_at is None
                and due < timezone.now() - self.STALE_AFTER)


# --- Payments ------------------------------------------------------------------------------


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CARD = "card", _("Card")
    CASH = "cash", _("Cash")
    OTHER = "other", _("Other")


REFERENCE_MAX_LENGTH = 200
REASON_MAX_LENGTH = 500


class PaymentLocked(ValidationError):
    """A payment or a reversal was about to be changed or deleted."""


class AppendOnly(models.Model):
    """Rows written once and never changed or deleted (the database refuses too)."""

    locked_message = ""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PaymentLocked(self.locked_message, code="append_only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PaymentLocked(self.locked_message, code="append_only")


class Payment(AppendOnly):
    """
    Money received against an issued invoice. Recorded by ``billing.services.record_payment``
    and never changed or deleted: a mistaken one is reversed (``PaymentReversal``).
    """

    locked_message = _("A payment cannot be changed or deleted; reverse it instead.")

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="payments",
                                verbose_name=_("company"))
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments",
                                verbose_name=_("invoice"))
    date = models.DateField(_("payment date"), validators=DATE_VALIDATORS)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    method = models.CharField(_("method"), max_length=20, choices=PaymentMethod.choices)
    reference = models.CharField(_("reference"), max_length=REFERENCE_MAX_LENGTH, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        verbose_name = _("payment")
        ordering = ["date", "id"]
        indexes = [models.Index(fields=["company", "-date", "-id"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0, amount__lte=MAX_AMOUNT),
                                   name="billing_payment_amount_positive"),
            models.CheckConstraint(condition=Q(method__in=PaymentMethod.values),
                                   name="billing_payment_method_valid"),
            length_at_most("reference", REFERENCE_MAX_LENGTH,
                           "billing_payment_reference_length"),
        ]

    def __str__(self):
        return str(_("Payment #%(id)s") % {"id": self.pk})

    @property
    def is_reversed(self):
        return hasattr(self, "reversal")


class PaymentReversal(AppendOnly):
    """
    Cancels one payment (who, when, why): the payment no longer counts, and a paid invoice
    is open again. At most one per payment; a reversal is itself never reversed (record the
    payment again instead).
    """

    locked_message = _("A payment reversal cannot be changed or deleted.")

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("company"))
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="reversal",
                                   verbose_name=_("payment"))
    reason = models.CharField(_("reason"), max_length=REASON_MAX_LENGTH)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("reversed by"))
    reversed_at = models.DateTimeField(_("reversed"), default=timezone.now)

    class Meta:
        verbose_name = _("payment reversal")
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""),
                                   name="billing_paymentreversal_reason_given"),
            length_at_most("reason", REASON_MAX_LENGTH,
                           "billing_paymentreversal_reason_length"),
        ]

    def __str__(self):
        return str(_("Reversal of payment #%(id)s") % {"id": self.payment_id})


# --- Recurring invoices and reminders ------------------------------------------------------


class Frequency(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    YEARLY = "yearly", _("Yearly")


# Months between two periods.
FREQUENCY_MONTHS = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.YEARLY: 12}
# ``day_of_month`` for the last day of each month (the 28th, 30th or 31st).
LAST_DAY = 31
DAY_CHOICES = [(day, str(day)) for day in range(1, 29)] + [(LAST_DAY, _("Last day"))]


class RecurringMode(models.TextChoices):
    DRAFT = "draft", _("Create drafts")
    SEND = "send", _("Create and send")


class RecurringInvoice(models.Model):
    """
    A schedule that makes an invoice per period from a template (client, currency, notes,
    lines): monthly, quarterly or yearly on a day of the month, from a start date to an
    optional end date. ``billing.recurring`` runs it: one draft per due period, sent too in
    the "create and send" mode (through ``billing.services.send_document``).
    """

    company = models.ForeignKey(Company, on_delete=models.PROTECT,
                                related_name="recurring_invoices", verbose_name=_("company"))
    name = models.CharField(_("name"), max_length=200,
                            help_text=_("What the schedule is for, such as \"Hosting\"."))
    client = models.ForeignKey(Client, on_delete=models.PROTECT,
                               related_name="recurring_invoices", verbose_name=_("client"))
    # The series its invoices are numbered in, given to each draft it makes.
    series = models.ForeignKey(
        "counters.NumberingSettings", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("numbering series"),
        help_text=_("Empty: the client's series, or else the company's default series."),
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    buyer_reference = models.CharField(_("buyer reference"), max_length=100, blank=True)
    notes = models.TextField(_("notes"), blank=True, max_length=NOTES_MAX_LENGTH)
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices,
                                 default=Frequency.MONTHLY)
    day_of_month = models.PositiveSmallIntegerField(_("day of the month"), choices=DAY_CHOICES,
                                                    default=1)
    start_date = models.DateField(_("start date"), validators=DATE_VALIDATORS,
                                  help_text=_("The first invoice is made on the first chosen "
                                              "day of the month from this date on."))
    end_date = models.DateField(_("end date"), null=True, blank=True,
                                validators=DATE_VALIDATORS, help_text=_("Empty: until paused."))
    mode = models.CharField(_("mode"), max_length=10, choices=RecurringMode.choices,
                            default=RecurringMode.DRAFT)
    email = models.BooleanField(_("e-mail the invoice to the client"), default=True,
                                help_text=_("In the \"create and send\" mode."))
    active = models.BooleanField(_("active"), default=True)
    # Who set the schedule up or changed it last: in the "create and send" mode, its
    # invoices are issued in their name, as long as their role allows sending.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("set up by"))
    # The latest period made (or tried): a run makes the later ones only, so a draft that
    # was deleted is not made again.
    last_period = models.DateField(_("last period"), null=True, blank=True, editable=False)
    # Why the last invoice could not be sent (kept as a draft); empty once one is sent.
    last_error = models.TextField(_("last problem"), blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("recurring invoice")
        verbose_name_plural = _("recurring invoices")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["company", "name"])]
        constraints = [
            models.CheckConstraint(condition=Q(frequency__in=Frequency.values),
                                   name="billing_recurringinvoice_frequency_valid"),
            models.CheckConstraint(condition=Q(mode__in=RecurringMode.values),
                                   name="billing_recurringinvoice_mode_valid"),
            models.CheckConstraint(
                condition=Q(day_of_month__gte=1, day_of_month__lte=28)
                | Q(day_of_month=LAST_DAY),
                name="billing_recurringinvoice_day_valid"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="billing_recurringinvoice_ends_after_start"),
            length_at_most("notes", NOTES_MAX_LENGTH, "billing_recurringinvoice_notes_length"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.client_id and self.company_id and self.client.company_id != self.company_id:
            raise ValidationError({"client": _("This client belongs to another company.")})
        if self.series_id and self.company_id and self.series.company_id != self.company_id:
            raise ValidationError({"series": _("This series belongs to another company.")})
        if self.end_date and self.start_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": _("The end date comes before the start date.")})

    def _refuse_if_issued(self, update_fields=None):
        """A template is never issued: its lines may always change (``LineItem.save``)."""

    @property
    def sends(self):
        return self.mode == RecurringMode.SEND

    def periods(self, until, after=None):
        """The schedule's period dates up to ``until`` (and its end date), after ``after``."""
        from .recurring import period_dates

        return period_dates(self, until, after=after)

    def next_period(self, after=None):
        """The next period to make (None once the schedule has ended)."""
        from .recurring import next_period

        return next_period(self, after or self.last_period)


class RecurringLine(LineItem):
    """A line of a recurring schedule's template, copied onto each invoice it makes."""

    document = models.ForeignKey(RecurringInvoice, on_delete=models.CASCADE,
                                 related_name="lines")

    class Meta(LineItem.Meta):
        verbose_name = _("recurring invoice line")


class Reminder(models.Model):
    """
    One reminder step of an overdue invoice (``billing.reminders``): sent (with its e-mail
    delivery) or skipped because a later step was due at the same time. At most one per
    invoice and step, whoever runs the reminders and however often.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("company"))
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders",
                                verbose_name=_("invoice"))
    step = models.PositiveSmallIntegerField(_("days after the due date"))
    due_on = models.DateField(_("due on"))
    skipped = models.BooleanField(
        _("skipped"), default=False,
        help_text=_("Not sent: a later reminder was due at the same time and went instead."))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("reminder")
        ordering = ["invoice", "step"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"],
                                    name="billing_reminder_once_per_step"),
        ]

    def __str__(self):
        return str(_("Reminder of %(invoice)s after %(days)s days") % {
            "invoice": self.invoice, "days": self.step})
# --- Month-end runs ------------------------------------------------------------------------


class SendBatch(models.Model):
    """
    A month-end run: drafts of one kind sent in the background, in a person's name
    (``billing.batches``). It is *running* until every item has an outcome, then *done*.
    """

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("company"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("started by"))
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    email = models.BooleanField(_("e-mail each document"), default=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices,
                             default=State.RUNNING)

    class Meta:
        verbose_name = _("month-end run")
        verbose_name_plural = _("month-end runs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"],
                                name="billing_sendbatch_company")]

    def __str__(self):
        return str(_("Month-end run #%(id)s") % {"id": self.pk})


class SendBatchItem(models.Model):
    """One draft of a month-end run and what became of it: issued (its number) or failed
    (why). Its outcome is written in the transaction that sent the draft."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Remaining")
        ISSUED = "issued", _("Issued")
        FAILED = "failed", _("Failed")

    batch = models.ForeignKey(SendBatch, on_delete=models.CASCADE, related_name="items")
    document_id = models.BigIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices,
                               default=Outcome.PENDING)
    number = models.CharField(max_length=NUMBER_MAX_LENGTH, blank=True)
    reason = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("month-end run item")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["batch", "document_id"],
                                               name="billing_sendbatchitem_once")]
        indexes = [models.Index(fields=["batch", "outcome"],
                                name="billing_sendbatchitem_outcome")]

    def __str__(self):
        return f"#{self.document_id}: {self.outcome}"


# The API's tables (``billing.api.models``), registered with the app's models.
from .api.models import ApiToken, IdempotencyKey  # noqa: E402, F401
