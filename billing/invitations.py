"""
Membership by consent. An owner invites an e-mail address; whoever controls that mailbox
accepts through a signed link that expires (with an existing account or by signing up).
Nothing here tells the owner whether an account with that address exists. Owners can revoke
a pending invitation; a member can leave (the last owner cannot).
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import services
from .models import Invitation, Membership

SALT = "folio.invitation"


def max_age() -> timedelta:
    return timedelta(days=getattr(settings, "FOLIO_INVITATION_DAYS", 7))


def per_hour() -> int:
    """The most invitations one company may send in an hour."""
    return getattr(settings, "FOLIO_INVITATIONS_PER_HOUR", 20)


def token_for(invitation: Invitation) -> str:
    return signing.TimestampSigner(salt=SALT).sign(str(invitation.pk))


def from_token(token: str) -> Invitation | None:
    """The pending invitation ``token`` names, or None: forged, expired, used or revoked."""
    try:
        pk = signing.TimestampSigner(salt=SALT).unsign(token, max_age=max_age())
    except signing.BadSignature:  # SignatureExpired is one
        return None
    invitation = Invitation.objects.select_related("company").filter(pk=int(pk)).first()
    return invitation if invitation and invitation.is_pending else None


def invite(company, email, role, *, invited_by, link_for) -> Invitation:
    """
    Invite ``email`` to ``company`` with ``role`` and e-mail the link (``link_for(token)``
    makes it absolute) once the invitation is stored. An earlier pending invitation to the
    same address is replaced. Refused beyond ``per_hour()`` invitations an hour.
    """
    email = email.strip()
    with transaction.atomic():
        # Locked, so that two owners inviting at once cannot both slip under the limit.
        list(Membership.objects.select_for_update().filter(company=company))
        recent = Invitation.objects.filter(
            company=company, created_at__gte=timezone.now() - timedelta(hours=1)).count()
        if recent >= per_hour():
            raise ValidationError(_("Too many invitations in the last hour: please try again "
                                    "later."), code="rate_limited")
        Invitation.objects.filter(company=company, email__iexact=email, accepted_at=None,
                                  revoked_at=None).update(revoked_at=timezone.now())
        invitation = Invitation.objects.create(company=company, email=email, role=role,
                                               invited_by=invited_by)
        link = link_for(token_for(invitation))
        transaction.on_commit(lambda: _send(invitation, link))
    return invitation


def _send(invitation, link):
    send_mail(
        subject=_("Join %(company)s on Folio") % {"company": invitation.company},
        message=_("%(inviter)s invites you to join %(company)s on Folio as %(role)s.\n\n"
                  "Accept (with your account, or by creating one) within %(days)d days:\n"
                  "%(link)s\n\nIf you did not expect this, ignore this e-mail.") % {
            "inviter": invitation.invited_by or _("An owner"),
            "company": invitation.company, "role": invitation.get_role_display(),
            "days": max_age().days, "link": link},
        from_email=invitation.company.email or settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
        fail_silently=True,  # the owner sees the same answer whatever the mailbox does
    )


def revoke(invitation: Invitation):
    Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now())


def accept(token: str, user) -> Membership:
    """``user`` accepts the invitation: they become a member (a member keeps their role)."""
    with transaction.atomic():
        invitation = from_token(token)
        if invitation is not None:
            invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation is None or not invitation.is_pending:
            raise ValidationError(_("This invitation is no longer valid: it has expired, "
                                    "been used or been revoked. Ask for a new one."),
                                  code="invalid")
        membership = Membership.objects.filter(company=invitation.company, user=user).first()
        if membership is None:
            membership = services.set_membership(invitation.company, user, invitation.role)
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def leave(membership: Membership):
    """The member leaves the company; the last owner stays (``remove_membership``)."""
    services.remove_membership(membership)
