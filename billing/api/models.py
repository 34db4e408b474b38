"""
The API's tables: company tokens and idempotency keys. Imported by ``billing.models`` (the
app's models module), defined here to keep the API in one package.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# billing.models imports this module once Membership is defined: the roles are the members'.
from billing.models import Membership


class ApiToken(models.Model):
    """
    A secret that lets a program act in one company with one role, sent as
    ``Authorization: Bearer folio_<prefix>_<secret>``. Only the SHA-256 of the whole token is
    stored; the prefix (public, unique) finds the row. Revoked, it never works again; a member
    who leaves the company (or is removed) revokes the tokens they made.
    """

    company = models.ForeignKey("billing.Company", on_delete=models.CASCADE,
                                related_name="api_tokens", verbose_name=_("company"))
    role = models.CharField(_("role"), max_length=20, choices=Membership.Role.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)  # sha256 hex of the token
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Membership.Role.values),
                                   name="billing_apitoken_role_valid"),
        ]

    def __str__(self):
        return f"folio_{self.prefix}_… ({self.name or self.get_role_display()})"

    @property
    def is_active(self):
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """
    One POST made with an ``Idempotency-Key`` header, and the response it got. The row is
    inserted in the transaction that does the request's work and stores its response: a
    second request with the key waits on the unique index until the first commits, then
    replays it (``billing.api.idempotency``). Kept at least ``FOLIO_IDEMPOTENCY_HOURS``.
    """

    company = models.ForeignKey("billing.Company", on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(ApiToken, null=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=b"")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "key"],
                                    name="billing_idempotencykey_unique"),
        ]

    def __str__(self):
        return f"{self.method} {self.path} [{self.key}]"
