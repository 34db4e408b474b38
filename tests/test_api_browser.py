"""
The API tokens page in a real browser (Debian's chromium through Playwright): an owner
creates a token, sees it once, and revokes it; the API then refuses it.
"""

import re

import pytest
from django.test import Client as WebClient
from playwright.sync_api import expect

from billing.api.models import ApiToken

from .test_browser import chromium, log_in, owner, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_status(token):
    return WebClient().get("/api/v1/clients", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_an_owner_creates_a_token_sees_it_once_and_revokes_it(page, owner):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    log_in(page)
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    page.get_by_label("What is it for?").fill("Web shop")
    page.get_by_label("Role").select_option("accountant")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("[data-token]")
    expect(shown).to_have_text(re.compile(r"^folio_[0-9a-f]{8}_\S+$"))
    token = shown.inner_text()
    page.shot("token-shown")
    violations = [v["id"] for v in Axe().run(page).response["violations"]
                  if v["impact"] in ("serious", "critical")]
    assert violations == []
    assert api_status(token) == 200

    page.goto("/company/tokens/")  # shown once: never again
    expect(page.locator("[data-token]")).to_have_count(0)
    assert token not in page.content()
    row = page.locator("tr", has_text="Web shop")
    expect(row).to_contain_text("Accountant")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked: it no longer works")).to_be_visible()
    expect(page.locator("tr", has_text="Web shop")).to_contain_text("Revoked")
    page.shot("token-revoked")
    assert ApiToken.objects.get().revoked_at is not None
    assert api_status(token) == 401


def test_the_api_docs_page_works_under_the_content_security_policy(page):  # noqa: F811
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto("/api/v1/docs")
    expect(page.get_by_text("Folio API").first).to_be_visible()
    expect(page.get_by_text("/api/v1/invoices/{id}/send").first).to_be_visible()
    assert blocked == []
