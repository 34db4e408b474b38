"""Deployment safety: production settings, headers, health, login throttling, admin."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.urls import reverse

from .factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "q8Vv2rT0mZ3x9L1kP7sW4eY6uB5nC8dF2gH0jK3lM6pQ9rS1tU4vW7xZ0aB3cD6",
    "FOLIO_REQUIRE_SECRET_KEY": "1",
    "ALLOWED_HOSTS": "folio.example.com",
    "FOLIO_BEHIND_TLS": "1",
    "FOLIO_PROXY_SSL_HEADER": "1",
}


def check_deploy(extra_env):
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_local_defaults_are_flagged_by_check_deploy():
    result = check_deploy({})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W009", "security.W012"):
        assert warning in result.stderr


def test_a_production_server_refuses_to_start_without_a_secret_key():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    result = check_deploy(env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_pages_carry_a_content_security_policy(client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_templates_have_no_inline_scripts_or_handlers():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+=", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_health_answers_ok_without_login(client):
    response = client.get(reverse("health"))
    assert response.status_code == 200 and response.content == b"ok"


def test_health_answers_503_when_the_database_is_unreachable(client, monkeypatch):
    from billing import views

    def broken():
        raise OperationalError("connection refused")

    monkeypatch.setattr(views.connection, "cursor", broken)
    response = client.get(reverse("health"))
    assert response.status_code == 503 and b"database unavailable" in response.content


def test_password_guessing_is_throttled(client):
    user = UserFactory(username="victim")
    url = reverse("login")
    for _ in range(4):
        response = client.post(url, {"username": "victim", "password": "guess"})
        assert response.status_code == 200 and "Please enter a correct" in \
            response.content.decode()
    fifth = client.post(url, {"username": "victim", "password": "guess"})
    assert fifth.status_code == 429
    locked = client.post(url, {"username": "victim", "password": "correct horse battery staple"})
    assert locked.status_code == 429 and "Too many failed log-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = UserFactory(username="bystander")
    ok = client.post(url, {"username": other.username, "password": "correct horse battery staple"})
    assert ok.status_code == 302  # the lockout is per username and address: another username,
    client.logout()
    elsewhere = client.post(url, {"username": "victim", "password": "correct horse battery staple"},
                            REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302  # and the same username from another address
    assert client.session["_auth_user_id"] == str(user.pk)


def test_admin_is_for_staff_only(client):
    member = MembershipFactory()
    client.force_login(member.user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]



def test_one_password_sprayed_across_usernames_is_throttled_per_address(client, settings):
    """Spraying: one wrong password for each of many usernames, never five for one (so the
    lock per username and address never fires): the address is paused, with a clear page."""
    settings.FOLIO_LOGIN_FAILURES_PER_CLIENT = 6
    user = UserFactory(username="sprayed")
    url = reverse("login")
    for n in range(6):
        response = client.post(url, {"username": f"user{n}x", "password": "Summer2026!"})
        assert response.status_code == 200
    locked = client.post(url, {"username": "sprayed",
                               "password": "correct horse battery staple"})
    assert locked.status_code == 429
    assert "Log-ins from your network address are paused" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    elsewhere = client.post(url, {"username": "sprayed",
                                  "password": "correct horse battery staple"},
                            REMOTE_ADDR="198.51.100.9")
    assert elsewhere.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
