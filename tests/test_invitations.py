"""Membership by consent: invitations, acceptance by signed expiring link, leaving, landing."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.test import Client as Browser
from django.urls import reverse
from django.utils import timezone

from billing import invitations
from billing.models import Invitation, Membership
from billing.tenancy import SESSION_KEY

from .factories import CompanyFactory, MembershipFactory, UserFactory
from .test_isolation import snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    client.membership = membership
    return client


def invite(owner, email, role="accountant", capture=None):
    with capture(execute=True):
        return owner.post(reverse("members"), {"email": email, "role": role}, follow=True)


def link_in(message):
    return re.search(r"https?://\S+", message.body).group(0)


def path_of(link):
    return link.split("testserver", 1)[1]


def test_the_answer_does_not_reveal_whether_an_account_exists(
        owner, django_capture_on_commit_callbacks):
    UserFactory(username="known", email="known@example.com")
    known = invite(owner, "known@example.com", capture=django_capture_on_commit_callbacks)
    unknown = invite(owner, "nobody@example.com", capture=django_capture_on_commit_callbacks)

    def message(response):
        return [str(m) for m in response.context["messages"]]

    assert message(known) == ["Invitation sent to known@example.com."]
    assert message(unknown) == ["Invitation sent to nobody@example.com."]
    assert known.status_code == unknown.status_code == 200
    # Nobody was added without consent: both are invitations, e-mailed with a link.
    assert not Membership.objects.filter(user__username="known").exists()
    assert Invitation.objects.count() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["known@example.com", "nobody@example.com"]


def test_an_existing_user_accepts_with_the_link(owner, django_capture_on_commit_callbacks):
    invite(owner, "known@example.com", "viewer", capture=django_capture_on_commit_callbacks)
    link = path_of(link_in(mail.outbox[0]))
    user = UserFactory(username="known", email="known@example.com")
    browser = Browser()
    page = browser.get(link)  # logged out: log in or sign up
    assert page.status_code == 200 and "Log in to accept" in page.content.decode()
    browser.force_login(user)
    assert "Accept as known" in browser.get(link).content.decode()
    response = browser.post(reverse("invitation_accept"), {"t": link.split("t=")[1]})
    assert response.status_code == 302
    membership = Membership.objects.get(user=user)
    assert membership.company == owner.membership.company and membership.role == "viewer"
    assert browser.session[SESSION_KEY] == membership.company_id
    # The link works once.
    again = browser.post(reverse("invitation_accept"), {"t": link.split("t=")[1]}, follow=True)
    assert "no longer valid" in again.content.decode()


def test_a_new_person_signs_up_through_the_link(owner, django_capture_on_commit_callbacks):
    invite(owner, "new@example.com", capture=django_capture_on_commit_callbacks)
    token = link_in(mail.outbox[0]).split("t=")[1]
    browser = Browser()
    response = browser.post(reverse("invitation_signup"), {
        "t": token, "username": "newbie", "password1": "a long unusual passphrase 42",
        "password2": "a long unusual passphrase 42"})
    assert response.status_code == 302
    membership = Membership.objects.get(user__username="newbie")
    assert membership.user.email == "new@example.com" and membership.role == "accountant"
    assert browser.get(reverse("home")).status_code == 200  # logged in, in the company


def test_a_forged_or_expired_link_is_refused(owner, django_capture_on_commit_callbacks):
    invite(owner, "new@example.com", capture=django_capture_on_commit_callbacks)
    token = link_in(mail.outbox[0]).split("t=")[1]
    user = UserFactory()
    browser = Browser()
    browser.force_login(user)
    before = snapshot()
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert browser.get(reverse("invitation_accept"), {"t": forged}).status_code == 404
    browser.post(reverse("invitation_accept"), {"t": forged})
    later = timezone.now() + invitations.max_age() + timedelta(minutes=1)
    with mock.patch("django.core.signing.time.time", return_value=later.timestamp()):
        assert browser.get(reverse("invitation_accept"), {"t": token}).status_code == 404
        browser.post(reverse("invitation_accept"), {"t": token})
        assert browser.post(reverse("invitation_signup"), {"t": token}).status_code == 404
    assert snapshot() == before
    # Within its time, the same link works: the refusals above were the signature's and age's.
    browser.post(reverse("invitation_accept"), {"t": token})
    assert Membership.objects.filter(user=user).exists()


def test_an_owner_revokes_a_pending_invitation(owner, django_capture_on_commit_callbacks):
    invite(owner, "new@example.com", capture=django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    page = owner.get(reverse("members")).content.decode()
    assert "new@example.com" in page and "Revoke" in page
    owner.post(reverse("members"), {"revoke": invitation.pk})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    browser = Browser()
    browser.force_login(UserFactory())
    token = link_in(mail.outbox[0]).split("t=")[1]
    browser.post(reverse("invitation_accept"), {"t": token})
    assert Membership.objects.filter(company=owner.membership.company).count() == 1


def test_only_owners_invite_or_revoke(client, django_capture_on_commit_callbacks):
    for role in ("accountant", "viewer"):
        membership = MembershipFactory(role=role)
        pending = Invitation.objects.create(company=membership.company, email="x@example.com",
                                            role="owner")
        client.force_login(membership.user)
        before = snapshot()
        assert client.post(reverse("members"), {"email": "me@example.com",
                                                "role": "owner"}).status_code == 403
        assert client.post(reverse("members"), {"revoke": pending.pk}).status_code == 403
        assert snapshot() == before


def test_another_companys_invitation_cannot_be_revoked(owner):
    foreign = Invitation.objects.create(company=CompanyFactory(), email="x@example.com",
                                        role="viewer")
    assert owner.post(reverse("members"), {"revoke": foreign.pk}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_invitations_are_rate_limited(owner, settings, django_capture_on_commit_callbacks):
    settings.FOLIO_INVITATIONS_PER_HOUR = 3
    for n in range(3):
        invite(owner, f"p{n}@example.com", capture=django_capture_on_commit_callbacks)
    before = snapshot()
    page = invite(owner, "p9@example.com", capture=django_capture_on_commit_callbacks)
    assert "Too many invitations" in page.content.decode()
    assert snapshot() == before and len(mail.outbox) == 3
    # An hour later the company may invite again.
    Invitation.objects.update(created_at=timezone.now() - timedelta(hours=1, minutes=1))
    invite(owner, "p9@example.com", capture=django_capture_on_commit_callbacks)
    assert Invitation.objects.filter(email="p9@example.com").exists()


def test_a_member_leaves_but_not_the_last_owner(client):
    company = CompanyFactory()
    owner = MembershipFactory(company=company, role="owner")
    viewer = MembershipFactory(company=company, role="viewer")
    client.force_login(viewer.user)
    client.post(reverse("leave_company"))
    assert not Membership.objects.filter(pk=viewer.pk).exists()
    client.force_login(owner.user)
    page = client.post(reverse("leave_company"), follow=True).content.decode()
    assert "needs at least one owner" in page
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_the_current_company_is_the_one_used_last_never_the_first_by_name(client):
    user = UserFactory()
    mine = MembershipFactory(user=user, company=CompanyFactory(name="Mine Ltd"), role="owner")
    # A company that added the user and renamed itself to come first by name.
    MembershipFactory(user=user, company=CompanyFactory(name="Aardvark Ltd"), role="viewer")
    client.force_login(user)
    assert client.get(reverse("home")).context["current_company"] == mine.company
    other = Browser()
    other.force_login(user)
    other.post(reverse("switch_company"), {"company": Membership.objects.get(
        user=user, company__name="Aardvark Ltd").company_id})
    # A new session lands in the company switched to last.
    fresh = Browser()
    fresh.force_login(user)
    assert fresh.get(reverse("home")).context["current_company"].name == "Aardvark Ltd"


# --- Password resets are rate-limited too -----------------------------------------------------



def test_password_reset_e_mails_to_one_address_are_limited(client, settings):
    settings.FOLIO_PASSWORD_RESETS_PER_ADDRESS = 2
    UserFactory(username="someone", email="someone@example.com")
    for _attempt in range(4):
        response = client.post(reverse("password_reset"), {"email": "someone@example.com"})
        assert response.status_code == 302  # the same answer every time
    assert len(mail.outbox) == 2


def test_password_resets_from_one_client_are_limited(client, settings):
    settings.FOLIO_PASSWORD_RESETS_PER_CLIENT = 3
    for n in range(3):
        assert client.post(reverse("password_reset"),
                           {"email": f"a{n}@example.com"}).status_code == 302
    page = client.post(reverse("password_reset"), {"email": "z@example.com"})
    assert page.status_code == 200 and "Too many password reset requests" in \
        page.content.decode()
    other = Browser(REMOTE_ADDR="10.9.8.7")
    assert other.post(reverse("password_reset"), {"email": "z@example.com"}).status_code == 302
