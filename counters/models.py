"""
Numbering for business documents: named series and their settings, sequences, the ledger of
issued numbers and the record of deliberate jumps.

The app knows three kinds of document (invoices, credit notes and quotes) and the model that
owns a numbering (``settings.COUNTERS_COMPANY_MODEL``); it imports nothing from the app that issues.
"""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.utils.dates import MONTHS
from django.utils.translation import gettext_lazy as _

from . import patterns

COMPANY_MODEL = settings.COUNTERS_COMPANY_MODEL
NUMBER_MAX_LENGTH = 64
PATTERN_MAX_LENGTH = 64
MAX_PADDING = patterns.MAX_PADDING
# A pattern must leave room for this many counter digits within NUMBER_MAX_LENGTH.
COUNTER_DIGITS_RESERVED = 9
REASON_MAX_LENGTH = 500
# The longest client code ({client_ref}) the issuing app may pass.
CLIENT_REF_MAX_LENGTH = 16
# An example client for previews of patterns with {client_ref} / {client_counter}.
EXAMPLE_CLIENT_REF = "ACME"


class Kind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")
    QUOTE = "quote", _("Quote")


class ResetPeriod(models.TextChoices):
    NEVER = patterns.NEVER, _("Never")
    YEARLY = patterns.YEARLY, _("Every year")
    MONTHLY = patterns.MONTHLY, _("Every month")


SHARED_SERIES = "shared"
# A quote pattern left empty is the invoice pattern after this.
DERIVED_QUOTE_PREFIX = "Q-"
# Why a quote pattern is refused beside another kind's (see NumberingSettings.clean).
QUOTE_COLLISIONS = {
    Kind.INVOICE: _("With their own counter, quotes and invoices would produce the same "
                    "numbers (%(example)s). Give the patterns different text, e.g. Q-."),
    Kind.CREDIT_NOTE: _("With their own counter, quotes and credit notes would produce the "
                        "same numbers (%(example)s). Give the patterns different text, e.g. "
                        "Q-."),
}
SERIES_CHOICES = [(SHARED_SERIES, _("Shared"))] + list(Kind.choices)

# A named series' code prefixes the keys of its counters in the books ("SHOP/invoice"), so
# that each series is numbered, and audited, on its own; a company's first series has none,
# and its keys are the counters' own names ("invoice"), as they were before named series.
SERIES_CODE_MAX_LENGTH = 8
SERIES_KEY_SEPARATOR = "/"


def series_key(code, counter) -> str:
    """The key the books record ``counter`` ("invoice", "shared"...) of the series ``code``
    under."""
    return f"{code}{SERIES_KEY_SEPARATOR}{counter}" if code else str(counter)


def split_series_key(key) -> tuple[str, str]:
    """(series code, counter) of a key written by ``series_key``."""
    code, _separator, counter = key.rpartition(SERIES_KEY_SEPARATOR)
    return code, counter


def series_label(key) -> str:
    """A key as people read it: "Invoice", or "SHOP · Invoice" in a named series."""
    code, counter = split_series_key(key)
    label = str(dict(SERIES_CHOICES).get(counter, counter))
    return f"{code} · {label}" if code else label


class NumberingSettings(models.Model):
    """
    One named series of a company ("Main", "Shop", "Madrid"...) and how it numbers its
    documents: its patterns, padding, restart and counters. Each company has one default
    series; a document is numbered in the series its draft chose, else its client's, else
    the default. Change it through ``save_numbering_settings``.
    """

    company = models.ForeignKey(
        COMPANY_MODEL, on_delete=models.CASCADE, related_name="numbering_series",
        db_index=False,
    )
    name = models.CharField(_("series name"), max_length=40,
                            help_text=_("How people call this series, e.g. Shop or Madrid."))
    code = models.CharField(
        _("series code"), max_length=SERIES_CODE_MAX_LENGTH, blank=True,
        validators=[RegexValidator(r"^[A-Z0-9]+\Z", _(
            "Use capital letters and digits only (e.g. SHOP)."))],
        help_text=_("A short code the books and the audit record this series under (e.g. "
                    "SHOP). Only the company's first series has none."),
    )
    is_default = models.BooleanField(
        _("default series"), default=False,
        help_text=_("Documents whose draft and client name no series are numbered in it."))
    shared_counter = models.BooleanField(
        _("shared counter"),
        default=False,
        help_text=_("Invoices and credit notes draw their values from one sequence."),
    )
    invoice_pattern = models.CharField(
        _("invoice pattern"), max_length=PATTERN_MAX_LENGTH, default="INV-{YYYY}-{counter}"
    )
    credit_note_pattern = models.CharField(
        _("credit note pattern"), max_length=PATTERN_MAX_LENGTH, default="CN-{YYYY}-{counter}"
    )
    quote_pattern = models.CharField(
        _("quote pattern"), max_length=PATTERN_MAX_LENGTH, blank=True, default="",
        help_text=_("Empty: the invoice pattern after Q- (Q-INV-2026-0001)."),
    )
    quotes_share_invoice_counter = models.BooleanField(
        _("quotes share the invoices' counter"),
        default=False,
        help_text=_("Quotes draw their values from the invoices' sequence instead of their "
                    "own."),
    )
    padding = models.PositiveSmallIntegerField(
        _("padding"),
        default=4,
        validators=[MaxValueValidator(MAX_PADDING)],
        help_text=_("The counter is zero-padded to this many digits."),
    )
    # Optional in forms: a form without it (one written before it existed) keeps the value.
    client_padding = models.PositiveSmallIntegerField(
        _("client counter padding"),
        default=3,
        blank=True,
        validators=[MaxValueValidator(MAX_PADDING)],
        help_text=_("{client_counter} is zero-padded to this many digits."),
    )
    reset_period = models.CharField(
        _("restart numbering"),
        max_length=10,
        choices=ResetPeriod.choices,
        default=ResetPeriod.YEARLY,
    )
    fiscal_year_start = models.PositiveSmallIntegerField(
        _("fiscal year starts in"),
        choices=sorted(MONTHS.items()),
        default=1,
        help_text=_("Yearly restarts happen on the first day of this month; {FY} prints "
                    "the fiscal year (2026-27, or 2026 when it starts in January)."),
    )

    class Meta:
        verbose_name = _("numbering series")
        verbose_name_plural = _("numbering series")
        ordering = ["company", "-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "name"], name="counters_series_name_unique",
                violation_error_message=_("This company already has a series of that name."),
            ),
            models.UniqueConstraint(
                fields=["company", "code"], name="counters_series_code_unique",
                violation_error_message=_("This company already has a series with that code."),
            ),
            models.UniqueConstraint(
                fields=["company"], condition=models.Q(is_default=True),
                name="counters_one_default_series",
                violation_error_message=_("A company has one default series."),
            ),
            models.CheckConstraint(
                condition=models.Q(padding__lte=MAX_PADDING), name="counters_padding_range"
            ),
            models.CheckConstraint(
                condition=models.Q(client_padding__lte=MAX_PADDING),
                name="counters_client_padding_range",
            ),
            models.CheckConstraint(
                condition=models.Q(reset_period__in=ResetPeriod.values),
                name="counters_reset_period_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(fiscal_year_start__gte=1, fiscal_year_start__lte=12),
                name="counters_fiscal_year_start_month",
            ),
        ]

    # Fields whose change can move values between sequences (see layout_differs and
    # save_numbering_settings).
    LAYOUT_FIELDS = ("shared_counter", "quotes_share_invoice_counter", "reset_period",
                     "fiscal_year_start")
    TRACKED_FIELDS = (
        "name", "code", "shared_counter", "invoice_pattern", "credit_note_pattern", "padding",
        "client_padding",
        "reset_period", "fiscal_year_start", "quote_pattern", "quotes_share_invoice_counter",
    )
    PATTERN_FIELDS = {Kind.INVOICE: "invoice_pattern", Kind.CREDIT_NOTE: "credit_note_pattern",
                      Kind.QUOTE: "quote_pattern"}

    def __str__(self):
        return self.name

    @classmethod
    def for_company(cls, company_id, series_id=None):
        """
        The series ``series_id`` of the company, or, when None, its default series (made on
        first use). A series of another company raises ``DoesNotExist``.
        """
        if series_id is not None:
            return cls.objects.get(company_id=company_id, pk=series_id)
        settings_, _created = cls.objects.get_or_create(
            company_id=company_id, is_default=True, defaults={"name": _("Main")})
        return settings_

    def series_for(self, kind) -> str:
        """The key of the counter ``kind`` draws its values from in this series
        (``series_key``): its own, the shared one, or (a quote sharing the invoices' counter)
        the invoices'."""
        if kind == Kind.QUOTE:
            if not self.quotes_share_invoice_counter:
                return series_key(self.code, Kind.QUOTE)
            kind = Kind.INVOICE
        return series_key(self.code, SHARED_SERIES if self.shared_counter else kind)

    def counter_keys(self) -> list[str]:
        """The keys of every counter this series could ever have drawn from."""
        return [series_key(self.code, counter) for counter, _label in SERIES_CHOICES]

    def is_used(self) -> bool:
        """Whether a value was ever taken in this series (issued, or skipped by a recorded
        jump): its books keep it, under its code."""
        return Sequence.objects.filter(company_id=self.company_id, series__in=self.counter_keys(),
                                       last__gt=0).exists()

    def pattern_for(self, kind) -> str:
        """The pattern of ``kind``; a quote's, when left empty, is the invoices' after Q-
        (valid whatever the restart, and never the invoices' shape)."""
        pattern = getattr(self, self.PATTERN_FIELDS[Kind(kind)])
        if kind == Kind.QUOTE and not pattern:
            return DERIVED_QUOTE_PREFIX + self.invoice_pattern
        return pattern

    def series_in_use(self) -> list[str]:
        return list(dict.fromkeys(self.series_for(kind) for kind in Kind))

    def format(self, kind, issue_date: date, value: int, *, client_value=None,
               client_ref="") -> str:
        return patterns.format_number(self.pattern_for(kind), issue_date, value, self.padding,
                                      self.fiscal_start, client_value=client_value,
                                      client_padding=self.client_padding,
                                      client_ref=client_ref)

    def uses_client_counter(self, kind) -> bool:
        """Whether ``kind``'s numbers carry a per-client counter ({client_counter})."""
        return patterns.uses_client_counter(self.pattern_for(kind))

    def needs_client_ref(self, kind) -> bool:
        """Whether ``kind``'s numbers print the client's code ({client_ref})."""
        return patterns.uses_client_ref(self.pattern_for(kind))

    def counts_by_client_alone(self) -> bool:
        """Whether a pattern (of any kind) numbers by {client_counter} without {counter}."""
        return any(patterns.uses_client_counter(p) and patterns.COUNTER not in patterns.tokens(p)
                   for p in map(self.pattern_for, Kind))

    @property
    def fiscal_start(self) -> int:
        """The fiscal year's first month, 1 while the field holds something else (an
        unsaved form's value that clean_fields refuses)."""
        value = self.fiscal_year_start
        return value if isinstance(value, int) and 1 <= value <= 12 else 1

    def period_for(self, issue_date: date) -> str:
        """The period a document issued on ``issue_date`` takes its value in."""
        return patterns.period_key(self.reset_period, issue_date, self.fiscal_start)

    def layout_differs(self, other) -> bool:
        """
        Whether ``other``'s counter layout (the sequences values are drawn from: shared or
        separate, and the periods they restart in) differs from this one's. The fiscal year
        only matters to yearly restarts.
        """
        if ((self.shared_counter, self.quotes_share_invoice_counter, self.reset_period)
                != (other.shared_counter, other.quotes_share_invoice_counter,
                    other.reset_period)):
            return True
        return self.reset_period == ResetPeriod.YEARLY and self.fiscal_start != other.fiscal_start

    def as_dict(self):
        return {name: getattr(self, name) for name in self.TRACKED_FIELDS}

    def clean(self):
        if self.client_padding is None:
            self.client_padding = self._meta.get_field("client_padding").default
        if not all(isinstance(p, int) and 0 <= p <= MAX_PADDING
                   for p in (self.padding, self.client_padding)):
            # clean_fields says so; checking the patterns needs paddings within bounds.
            return
        errors = {}
        for kind, field in self.PATTERN_FIELDS.items():
            if kind == Kind.QUOTE and not self.quote_pattern and "invoice_pattern" in errors:
                continue  # the invoice pattern's error says it
            pattern = self.pattern_for(kind)
            try:
                patterns.validate_pattern(pattern, reset_period=self.reset_period,
                                          fiscal_start=self.fiscal_start)
            except ValidationError as error:
                errors[field] = error
                continue
            longest = patterns.format_number(
                pattern, date(2099, 12, 31), 0, max(self.padding or 0, COUNTER_DIGITS_RESERVED),
                self.fiscal_start, client_value=0,
                client_padding=max(self.client_padding or 0, COUNTER_DIGITS_RESERVED),
                client_ref="X" * CLIENT_REF_MAX_LENGTH,
            )
            if len(longest) > NUMBER_MAX_LENGTH:
                errors[field] = ValidationError(
                    _("Numbers from this pattern could be longer than %(max)d characters."),
                    code="too_long",
                    params={"max": NUMBER_MAX_LENGTH},
                )
        if errors:
            raise ValidationError(errors)
        stored = NumberingSettings.objects.filter(pk=self.pk).first() if self.pk else None
        self._clean_code(stored)
        if (stored is not None and self.counts_by_client_alone()
                and stored.layout_differs(self)
                and ClientSequence.objects.filter(company_id=self.company_id,
                                                  series__in=self.counter_keys()).exists()):
            # Client counters restart in the new layout's series: without {counter} their
            # numbers would repeat those already issued.
            raise ValidationError(_(
                "While a pattern numbers by {client_counter} without {counter}, the shared "
                "counter, the restart and the fiscal year cannot change: add {counter} to "
                "the patterns first."), code="client_counter_layout")
        if not self.shared_counter and patterns.patterns_may_collide(
            self.invoice_pattern, self.credit_note_pattern, self.fiscal_start
        ):
            raise ValidationError({
                "credit_note_pattern": ValidationError(
                    _("With separate counters, invoices and credit notes would produce the same "
                      "numbers (%(example)s). Give the patterns different text, e.g. INV- and "
                      "CN-."),
                    code="collision",
                    params={"example": self.format(Kind.CREDIT_NOTE, date.today(), 1,
                                                   client_value=1,
                                                   client_ref=EXAMPLE_CLIENT_REF)},
                )
            })
        for other in (Kind.INVOICE, Kind.CREDIT_NOTE):
            # Kinds drawing from different series can give the same value: their patterns
            # must tell their numbers apart.
            if self.series_for(Kind.QUOTE) != self.series_for(other) and \
                    patterns.patterns_may_collide(self.pattern_for(Kind.QUOTE),
                                                  self.pattern_for(other),
                                                  self.fiscal_start):
                raise ValidationError({
                    "quote_pattern": ValidationError(
                        QUOTE_COLLISIONS[other],
                        code="collision",
                        params={"example": self.format(Kind.QUOTE, date.today(), 1)},
                    )
                })
        self._refuse_collisions_with_other_series()

    def other_series(self):
        """The company's other series."""
        return NumberingSettings.objects.filter(company_id=self.company_id).exclude(pk=self.pk)

    def _clean_code(self, stored):
        """Only a company's first series goes without a code, and a code the books already
        hold numbers under stays."""
        if not self.company_id:
            return
        if not self.code and self.other_series().filter(code="").exists():
            raise ValidationError({"code": ValidationError(
                _("Give this series a code: the company's first series already goes "
                  "without one."), code="code_required")})
        if stored is not None and stored.code != self.code and stored.is_used():
            raise ValidationError({"code": ValidationError(
                _("Numbers were issued in this series under its code: it cannot change."),
                code="code_used")})

    def _refuse_collisions_with_other_series(self):
        """Series count apart: their patterns must tell their numbers apart, and a series
        never takes a pattern that could repeat a number another series already issued
        (with a pattern it no longer uses)."""
        if not self.company_id or not self.other_series().exists():
            return
        issued_elsewhere = IssuedNumber.objects.filter(company_id=self.company_id).exclude(
            series__in=self.counter_keys())
        for kind in Kind:
            repeated = issued_elsewhere.filter(number__regex=patterns.number_regex(
                self.pattern_for(kind), self.fiscal_start)).values_list("number", flat=True)
            if number := repeated.first():
                raise ValidationError({self.PATTERN_FIELDS[kind]: ValidationError(
                    _("Numbers of this series could repeat %(number)s, already issued in "
                      "another series. Give its patterns their own text, e.g. "
                      "%(prefix)s-."),
                    code="series_collision", params={"number": number,
                                                     "prefix": self.code or "A"},
                )})
        for other in self.other_series():
            for kind in Kind:
                for other_kind in Kind:
                    if patterns.patterns_may_collide(
                            self.pattern_for(kind), other.pattern_for(other_kind),
                            self.fiscal_start, other.fiscal_start):
                        raise ValidationError({self.PATTERN_FIELDS[kind]: ValidationError(
                            _("Numbers of this series could repeat those of the series "
                              "%(series)s (%(example)s). Give its patterns their own text, "
                              "e.g. %(prefix)s-."),
                            code="series_collision",
                            params={"series": other.name,
                                    "example": other.format(other_kind, date.today(), 1,
                                                            client_value=1,
                                                            client_ref=EXAMPLE_CLIENT_REF),
                                    "prefix": self.code or "A"},
                        )})


class Sequence(models.Model):
    """The last value handed out in one series of one company for one period."""

    # No index of its own: the unique (company, series, period) index serves company lookups.
    company = models.ForeignKey(
        COMPANY_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    series = models.CharField(_("series"), max_length=20)  # a series_key
    period = models.CharField(
        _("period"), max_length=7, blank=True, help_text=_("Empty when numbers never restart.")
    )
    last = models.PositiveBigIntegerField(_("last value"), default=0)
    last_hash = models.CharField(
        _("hash of the last entry"), max_length=64, blank=True, default="", editable=False
    )

    class Meta:
        verbose_name = _("sequence")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "series", "period"], name="counters_sequence_unique"
            ),
        ]

    def __str__(self):
        return f"{self.series} {self.period or '-'}: {self.last}"


class ClientSequence(models.Model):
    """
    The last value of one client's own counter ({client_counter}) in one series of one
    company for one period: a second gapless counter, taken in the same transaction as the
    series' own.
    """

    # No index of its own: the unique (company, client, series, period) index serves it.
    company = models.ForeignKey(
        COMPANY_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    client_id = models.BigIntegerField(_("client id"))
    series = models.CharField(_("series"), max_length=20)  # a series_key
    period = models.CharField(
        _("period"), max_length=7, blank=True, help_text=_("Empty when numbers never restart.")
    )
    last = models.PositiveBigIntegerField(_("last value"), default=0)

    class Meta:
        verbose_name = _("client sequence")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "client_id", "series", "period"],
                name="counters_client_sequence_unique",
            ),
        ]

    def __str__(self):
        return f"{self.series} {self.period or '-'} client #{self.client_id}: {self.last}"


class IssuedNumber(models.Model):
    """
    The ledger: one row per issued document, written in the transaction that issues it.

    Rows are never changed or deleted (the database refuses); audits read this table.
    """

    # What each entry's hash covers (counters.chain), in this order.
    HASHED_FIELDS = ("company_id", "series", "period", "value", "number", "kind",
                     "document_id", "issue_date", "total", "currency", "previous_hash")
    # Fields added after entries were first chained: an entry without them (empty or NULL)
    # keeps the content, and so the hash, it was chained with (counters.chain).
    OPTIONAL_HASHED_FIELDS = ("snapshot_digest", "client_id", "client_value")

    # No index of its own: the unique (company, number) index serves company lookups, and
    # every index less is less work for each issue.
    company = models.ForeignKey(
        COMPANY_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    series = models.CharField(_("series"), max_length=20)  # a series_key
    period = models.CharField(_("period"), max_length=7, blank=True)
    value = models.PositiveBigIntegerField(_("value"))
    number = models.CharField(_("number"), max_length=NUMBER_MAX_LENGTH)
    kind = models.CharField(_("document kind"), max_length=20, choices=Kind.choices)
    document_id = models.BigIntegerField(_("document id"))
    issue_date = models.DateField(_("issue date"))
    total = models.DecimalField(_("total"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    # The SHA-256 of the document's content as issued (its snapshot); empty for entries
    # issued before snapshots existed.
    snapshot_digest = models.CharField(_("content digest"), max_length=64, blank=True,
                                       default="")
    # The client's own counter ({client_counter}): set only when the pattern carries one.
    client_id = models.BigIntegerField(_("client id"), null=True, blank=True)
    client_value = models.PositiveBigIntegerField(_("client counter value"), null=True,
                                                  blank=True)
    previous_hash = models.CharField(_("previous hash"), max_length=64, blank=True)
    entry_hash = models.CharField(_("hash"), max_length=64)
    # PROTECT: the ledger never changes, so a user who issued numbers cannot be deleted
    # (which would blank this column); deactivate them instead.
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("issued by"),
    )
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)

    class Meta:
        verbose_name = _("issued number")
        ordering = ["company", "series", "period", "value"]
        constraints = [
            models.UniqueConstraint(fields=["company", "number"], name="counters_number_unique"),
            models.UniqueConstraint(
                fields=["company", "series", "period", "value"],
                name="counters_series_value_unique",
            ),
            models.UniqueConstraint(fields=["kind", "document_id"], name="counters_document_once"),
            models.CheckConstraint(condition=models.Q(value__gte=1), name="counters_value_gte_1"),
            models.UniqueConstraint(
                fields=["company", "client_id", "series", "period", "client_value"],
                condition=models.Q(client_value__isnull=False),
                name="counters_client_value_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(client_value__isnull=True)
                | models.Q(client_value__gte=1, client_id__isnull=False),
                name="counters_client_value_gte_1",
            ),
        ]

    def __str__(self):
        return self.number


class NumberJump(models.Model):
    """
    A deliberate, explained hole in a series: values ``first_value``..``last_value`` were
    never issued, because someone set the next number forward or the counter layout changed.
    """

    company = models.ForeignKey(COMPANY_MODEL, on_delete=models.PROTECT, related_name="+")
    series = models.CharField(_("series"), max_length=20)  # a series_key
    period = models.CharField(_("period"), max_length=7, blank=True)
    first_value = models.PositiveBigIntegerField(_("first skipped value"))
    last_value = models.PositiveBigIntegerField(_("last skipped value"))
    reason = models.TextField(_("reason"), max_length=REASON_MAX_LENGTH)
    # PROTECT, as for the ledger: explained jumps never change either.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("explained jump")
        ordering = ["company", "series", "period", "first_value"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(first_value__gte=1)
                & models.Q(last_value__gte=models.F("first_value")),
                name="counters_jump_range",
            ),
            models.CheckConstraint(
                condition=models.lookups.LessThanOrEqual(
                    models.functions.Length("reason"), REASON_MAX_LENGTH),
                name="counters_jump_reason_length",
            ),
        ]

    def __str__(self):
        return f"{self.series} {self.period or '-'}: {self.first_value}..{self.last_value}"


class NumberingSettingsChange(models.Model):
    """Who changed a company's numbering settings, when, from what to what."""

    company = models.ForeignKey(COMPANY_MODEL, on_delete=models.CASCADE, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    old = models.JSONField()
    new = models.JSONField()

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("numbering settings change")

    def __str__(self):
        return f"{self.changed_at:%Y-%m-%d %H:%M} {self.changed_by or '-'}"


class StateEvent(models.Model):
    """
    The history: one row per change of an issued document's state (its issue included),
    written in the transaction that changes it, chained per company (``counters.chain``).

    Rows are never changed or deleted (the database refuses); the audit checks that every
    document's state is the one its history ends with.
    """

    HASHED_FIELDS = ("company_id", "seq", "kind", "document_id", "from_state", "to_state",
                     "actor_id", "at", "reason", "previous_hash")

    company = models.ForeignKey(
        COMPANY_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    seq = models.PositiveBigIntegerField(_("event number"))  # 1, 2, … per company
    kind = models.CharField(_("document kind"), max_length=20, choices=Kind.choices)
    document_id = models.BigIntegerField(_("document id"))
    from_state = models.CharField(_("from"), max_length=20)
    to_state = models.CharField(_("to"), max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("by"),
    )
    at = models.DateTimeField(_("at"))
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    previous_hash = models.CharField(_("previous hash"), max_length=64, blank=True)
    event_hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("state change")
        ordering = ["company", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["company", "seq"], name="counters_event_seq_unique"),
        ]
        indexes = [models.Index(fields=["kind", "document_id", "seq"])]

    def __str__(self):
        return f"{self.kind} #{self.document_id}: {self.from_state} -> {self.to_state}"


class EventChain(models.Model):
    """The head of a company's history chain: its last event number and hash."""

    company = models.OneToOneField(COMPANY_MODEL, on_delete=models.CASCADE, related_name="+")
    last = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True, default="")

    def __str__(self):
        return f"{self.company_id}: {self.last}"
