"""
What a role may do in a company: the one rule that the pages, the admin and the commands
ask. Viewers read; accountants also create (and edit or delete drafts, and clients nothing
names), send, credit, cancel and record payments; owners also manage numbering and members.

``can(membership_or_role, action)`` answers for one membership (or a role, or None for no
membership); ``user_can(user, company_id, action)`` for a user in a company (a superuser may
do everything, in every company); ``companies_allowing(user, action)`` gives the companies
where a user may do ``action`` (None for all: a superuser).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Action(models.TextChoices):
    READ = "read", _("read")
    CREATE = "create", _("create and edit drafts")
    SEND = "send", _("send")
    CREDIT = "credit", _("credit")
    CANCEL = "cancel", _("cancel")
    RECORD_PAYMENT = "record_payment", _("record payments")
    MANAGE_NUMBERING = "manage_numbering", _("manage numbering")
    MANAGE_MEMBERS = "manage_members", _("manage members")


_VIEWER = frozenset({Action.READ})
_ACCOUNTANT = _VIEWER | {Action.CREATE, Action.SEND, Action.CREDIT, Action.CANCEL,
                         Action.RECORD_PAYMENT}
_OWNER = _ACCOUNTANT | {Action.MANAGE_NUMBERING, Action.MANAGE_MEMBERS}

# Role (Membership.Role's values) -> the actions it allows.
RULES = {"viewer": _VIEWER, "accountant": _ACCOUNTANT, "owner": _OWNER}


def _check_action(action):
    if action not in Action.values:
        raise ValueError(f"Unknown action {action!r}; one of {Action.values}.")


def can(membership_or_role, action) -> bool:
    """Whether a membership (or a role, or None: no membership) allows ``action``."""
    _check_action(action)
    role = getattr(membership_or_role, "role", membership_or_role)
    return action in RULES.get(role, frozenset())


def roles_allowing(action) -> list[str]:
    _check_action(action)
    return [role for role, actions in RULES.items() if action in actions]


def user_can(user, company_id, action) -> bool:
    """Whether ``user`` may do ``action`` in the company ``company_id``."""
    _check_action(action)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    from .models import Membership

    return Membership.objects.filter(
        user=user, company_id=company_id, role__in=roles_allowing(action)).exists()


def companies_allowing(user, action):
    """The companies where ``user`` may do ``action``; None for all (a superuser)."""
    from .models import Company

    _check_action(action)
    if getattr(user, "is_superuser", False) and user.is_active:
        return None
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Company.objects.none()
    return Company.objects.filter(membership__user=user,
                                  membership__role__in=roles_allowing(action))
