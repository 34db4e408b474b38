"""
Per-client counters, as a specification: a pattern may carry ``{client_counter}`` (each
client's own gapless counter in the series and period, taken in the same transaction as the
series' own) and ``{client_ref}`` (the client's code); the ledger records, hashes and audits
the client's value; patterns whose numbers could collide are refused.
"""

import threading
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.urls import reverse

from billing.forms import ClientForm
from billing.models import Client, Invoice, Membership
from billing.services import send_document
from counters import audit as audit_module
from counters import chain, patterns
from counters.audit import AuditScope, run_audit
from counters.dbguards import guards_lifted
from counters.models import ClientSequence, IssuedNumber, NumberingSettings, Sequence
from counters.services import preview_number

from .factories import (
    ClientFactory,
    CompanyFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
    QuoteFactory,
    configure_numbering,
)

PER_CLIENT = "{YY}{MM}-{counter}-{client_ref}-{client_counter}"
CN_PER_CLIENT = "CN{YY}{MM}-{counter}-{client_ref}-{client_counter}"


def per_client_company(**fields):
    company = CompanyFactory()
    configure_numbering(company, invoice_pattern=PER_CLIENT, credit_note_pattern=CN_PER_CLIENT,
                        **fields)
    return company


def sql(statement, params=()):
    """Run ``statement`` with Folio's triggers out of the way, as a DBA with psql would."""
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute(statement, params)


# --- The tokens and the patterns ---------------------------------------------------------------


def test_the_tokens_print_the_clients_code_and_its_own_padded_counter():
    number = patterns.format_number(PER_CLIENT, date(2026, 1, 15), 12, 4, client_value=1,
                                    client_padding=3, client_ref="ACME")
    assert number == "2601-0012-ACME-001"


@pytest.mark.parametrize(("pattern", "code"), [
    ("INV-{YYYY}-{client_counter}", "client_collision"),  # two clients: the same numbers
    ("INV-{YYYY}", "counter"),
    ("INV-{YYYY}-{counter}-{client_counter}-{client_counter}", "counter"),
    ("INV-{YYYY}-{counter}-{client_ref}{client_counter}", "client_ref_adjacent"),
    ("{YYYY}{client_ref}-{counter}", "client_ref_adjacent"),
])
def test_patterns_whose_numbers_could_collide_are_refused(pattern, code):
    with pytest.raises(ValidationError) as caught:
        patterns.validate_pattern(pattern, reset_period=patterns.YEARLY)
    assert caught.value.code == code


@pytest.mark.parametrize("pattern", [
    PER_CLIENT,
    "{client_ref}-{YYYY}-{client_counter}",  # the client's code tells clients apart
    "INV-{YYYY}-{counter}-{client_counter}",  # {counter} keeps every number unique
    "INV-{YYYY}-{counter}-{client_ref}",
])
def test_patterns_with_per_client_tokens_that_cannot_collide_are_accepted(pattern):
    patterns.validate_pattern(pattern, reset_period=patterns.YEARLY)


@pytest.mark.parametrize(("invoices", "credit_notes", "collide"), [
    # A client coded CN would give CN-2026-0001 in both series.
    ("{client_ref}-{YYYY}-{counter}", "CN-{YYYY}-{counter}", True),
    ("INV-{client_ref}-{counter}", "INV-{client_ref}/{counter}", True),
    ("INV-{YYYY}-{counter}-{client_ref}", "INV-{YYYY}-{counter}", False),  # no 2nd hyphen
    ("INV-{YYYY}-{client_ref}-{client_counter}", "CN-{YYYY}-{client_ref}-{client_counter}",
     False),
    (PER_CLIENT, CN_PER_CLIENT, False),  # 2601-… never begins like CN2601-…
    ("INV-{YYYY}-{counter}", "CN-{YYYY}-{counter}", False),
    ("{YYYY}-{counter}", "{YY}{MM}-{counter}", True),  # 2026-0001 and 2601-0001 alike
])
def test_separate_series_printing_client_codes_must_differ_before_the_code(
        invoices, credit_notes, collide):
    assert patterns.patterns_may_collide(invoices, credit_notes) is collide
    assert patterns.patterns_may_collide(credit_notes, invoices) is collide


def test_the_settings_refuse_separate_series_that_could_collide():
    numbering = NumberingSettings(company=CompanyFactory.build(),
                                  invoice_pattern="{client_ref}-{YYYY}-{counter}",
                                  credit_note_pattern="CN-{YYYY}-{counter}")
    with pytest.raises(ValidationError) as caught:
        numbering.clean()
    assert "same numbers" in str(caught.value)
    numbering.shared_counter = True  # one counter: never the same number twice
    numbering.invoice_pattern = numbering.credit_note_pattern = PER_CLIENT
    numbering.clean()


def test_the_longest_client_code_must_fit_in_a_number():
    numbering = NumberingSettings(company=CompanyFactory.build(),
                                  invoice_pattern="OUR-SALES-INVOICE-NUMBER-{YYYY}-{counter}/"
                                                  "{client_ref}/{client_counter}")
    with pytest.raises(ValidationError) as caught:
        numbering.clean()
    assert "longer than 64" in str(caught.value)


# --- Issuing -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_client_counts_its_own_documents_beside_the_company_series(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    bolt = ClientFactory(company=company, code="BOLT")
    numbers = [send_document(InvoiceFactory(client=client)).number
               for client in (acme, bolt, acme, acme, bolt)]
    assert numbers == ["2601-0001-ACME-001", "2601-0002-BOLT-001", "2601-0003-ACME-002",
                       "2601-0004-ACME-003", "2601-0005-BOLT-002"]
    ledger = list(IssuedNumber.objects.order_by("value")
                  .values_list("value", "client_id", "client_value"))
    assert ledger == [(1, acme.pk, 1), (2, bolt.pk, 1), (3, acme.pk, 2), (4, acme.pk, 3),
                      (5, bolt.pk, 2)]
    assert list(run_audit(AuditScope(company_id=company.pk)).findings) == []


@pytest.mark.django_db
def test_client_counters_restart_with_the_period_and_credit_notes_count_their_own(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company(reset_period="monthly")
    acme = ClientFactory(company=company, code="ACME")
    assert send_document(InvoiceFactory(client=acme)).number == "2601-0001-ACME-001"
    assert send_document(CreditNoteFactory(client=acme)).number == "CN2601-0001-ACME-001"
    assert send_document(CreditNoteFactory(client=acme)).number == "CN2601-0002-ACME-002"
    issue_on(date(2026, 2, 1))
    assert send_document(InvoiceFactory(client=acme)).number == "2602-0001-ACME-001"
    assert list(run_audit(AuditScope(company_id=company.pk)).findings) == []


@pytest.mark.django_db
def test_with_a_shared_counter_invoices_and_credit_notes_share_the_clients_counter(issue_on):
    issue_on(date(2026, 1, 15))
    company = CompanyFactory()
    configure_numbering(company, shared_counter=True, invoice_pattern=PER_CLIENT,
                        credit_note_pattern=PER_CLIENT, client_padding=2)
    acme = ClientFactory(company=company, code="ACME")
    assert send_document(InvoiceFactory(client=acme)).number == "2601-0001-ACME-01"
    assert send_document(CreditNoteFactory(client=acme)).number == "2601-0002-ACME-02"


@pytest.mark.django_db
def test_numbers_by_client_code_and_client_counter_alone(issue_on):
    issue_on(date(2026, 5, 4))
    company = CompanyFactory()
    # Quotes too draw from the shared counter: their own would print Q-ACME-2026-001, which
    # is also the invoice number of a client coded Q-ACME.
    configure_numbering(company, shared_counter=True, quotes_share_invoice_counter=True,
                        invoice_pattern="{client_ref}-{YYYY}-{client_counter}",
                        credit_note_pattern="{client_ref}-{YYYY}-{client_counter}")
    acme = ClientFactory(company=company, code="ACME")
    bolt = ClientFactory(company=company, code="BOLT")
    numbers = [send_document(InvoiceFactory(client=c)).number for c in (acme, bolt, acme)]
    assert numbers == ["ACME-2026-001", "BOLT-2026-001", "ACME-2026-002"]
    # The company's series is still whole underneath: 1, 2, 3.
    assert sorted(IssuedNumber.objects.values_list("value", flat=True)) == [1, 2, 3]
    assert list(run_audit(AuditScope(company_id=company.pk)).findings) == []


@pytest.mark.django_db
def test_the_counter_layout_cannot_change_while_numbers_count_by_client_alone():
    """Before any client counter was taken it may (see the test above)."""
    company = CompanyFactory()
    configure_numbering(company, invoice_pattern="INV-{client_ref}-{YYYY}-{client_counter}")
    send_document(InvoiceFactory(client=ClientFactory(company=company, code="ACME")))
    # Shared, the clients' counters would restart in a new series and repeat
    # INV-ACME-2026-001.
    with pytest.raises(ValidationError) as caught:
        configure_numbering(company, shared_counter=True)
    assert "cannot change" in str(caught.value)
    configure_numbering(company, shared_counter=True,
                        invoice_pattern="INV-{client_ref}-{YYYY}-{counter}-{client_counter}")


@pytest.mark.django_db
def test_a_client_without_a_code_is_refused_before_any_number_is_taken(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    nameless = ClientFactory(company=company)
    draft = InvoiceFactory(client=nameless)
    with pytest.raises(ValidationError) as caught:
        send_document(draft)
    assert "this client has none: give the client a code first" in caught.value.messages[0]
    draft.refresh_from_db()
    assert draft.is_draft and draft.number == ""
    assert not Sequence.objects.exists() and not ClientSequence.objects.exists()
    assert not IssuedNumber.objects.exists()
    nameless.code = "NAMELESS"
    nameless.save()
    assert send_document(draft).number == "2601-0001-NAMELESS-001"


@pytest.mark.django_db
def test_sending_from_the_page_without_a_code_says_why(client):
    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    configure_numbering(member.company, invoice_pattern=PER_CLIENT,
                        credit_note_pattern=CN_PER_CLIENT)
    draft = InvoiceFactory(client=ClientFactory(company=member.company))
    response = client.post(reverse("invoice_send", args=[draft.pk]), follow=True)
    assert response.status_code == 200
    assert "give the client a code first" in response.content.decode()
    assert Invoice.objects.get(pk=draft.pk).is_draft


@pytest.mark.django_db
def test_the_preview_of_a_draft_shows_its_clients_next_number(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    send_document(InvoiceFactory(client=acme))
    send_document(InvoiceFactory(client=ClientFactory(company=company, code="BOLT")))
    assert preview_number(InvoiceFactory(client=acme)) == "2601-0003-ACME-002"


# --- The ledger's hash and the audit -----------------------------------------------------------


@pytest.mark.django_db
def test_an_entry_without_a_client_counter_keeps_the_content_it_was_chained_with(issue_on):
    issue_on(date(2026, 1, 15))
    send_document(InvoiceFactory())
    entry = IssuedNumber.objects.get()
    assert entry.client_id is None and entry.client_value is None
    fixed = [chain._text(IssuedNumber._meta.get_field(name), getattr(entry, name))
             for name in IssuedNumber.HASHED_FIELDS]
    # What the content was before client counters existed: the fields, then the digest.
    assert chain.entry_content(entry) == "|".join(fixed) + f"|{entry.snapshot_digest}"
    entry.snapshot_digest = ""
    assert chain.entry_content(entry) == "|".join(fixed)
    entry.client_id, entry.client_value = 7, 1
    assert chain.entry_content(entry) == "|".join(fixed) + "||7|1"


@pytest.mark.django_db
def test_the_sql_and_python_hashes_agree_on_entries_with_client_counters(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    send_document(InvoiceFactory())  # another company, no client counter
    for _ in range(3):
        send_document(InvoiceFactory(client=acme))
    if connection.vendor == "sqlite":
        audit_module._register_sqlite_sha256()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT l.id, {chain.hash_sql('l', connection.vendor)}, l.entry_hash "
                       f"FROM {IssuedNumber._meta.db_table} l", [])
        rows = cursor.fetchall()
    assert len(rows) == 4 and all(computed == stored for _id, computed, stored in rows)
    scope = AuditScope()
    assert list(audit_module._keyed_hash_mismatches(scope, b"")) == []
    assert list(audit_module._sql_hash_mismatches(scope)) == []


@pytest.mark.django_db
def test_the_audit_finds_an_altered_client_value_and_names_the_client(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME", name="Acme Corp")
    sent = [send_document(InvoiceFactory(client=acme)) for _ in range(2)]
    sql(f"UPDATE {IssuedNumber._meta.db_table} SET client_value = 3 WHERE number = %s",
        [sent[1].number])
    findings = list(run_audit(AuditScope(company_id=company.pk)).findings)
    kinds = {(f.kind, f.client_id) for f in findings}
    assert ("tampered", None) in kinds  # the entry's hash covers the client's value
    gaps = [f for f in findings if f.kind == "gap" and f.client_id == acme.pk]
    assert [g.values for g in gaps] == [[2]]
    assert "client Acme Corp" in gaps[0].message


@pytest.mark.django_db
def test_the_audit_finds_client_values_taken_but_never_recorded(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    send_document(InvoiceFactory(client=acme))
    ClientSequence.objects.filter(client_id=acme.pk).update(last=3)
    findings = [f for f in run_audit(AuditScope(company_id=company.pk)).findings]
    assert [(f.kind, f.client_id, f.values) for f in findings] == [("gap", acme.pk, [2, 3])]


@pytest.mark.django_db
def test_the_database_refuses_a_client_value_twice(issue_on):
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    first, second = (send_document(InvoiceFactory(client=acme)) for _ in range(2))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - either database's IntegrityError
        sql(f"UPDATE {IssuedNumber._meta.db_table} SET client_value = 1 WHERE number = %s",
            [second.number])
    assert "unique" in str(caught.value).lower()


# --- The client's code and the pages -------------------------------------------------------------


@pytest.mark.django_db
def test_the_client_form_takes_a_short_code_unique_within_the_company():
    company = CompanyFactory()
    ClientFactory(company=company, code="ACME")
    data = {"name": "Other", "country": "FR", "language": "", "code": "acme"}
    form = ClientForm(data, instance=Client(company=company))
    assert not form.is_valid()
    assert "Another client of this company has the code ACME." in form.errors["code"]
    form = ClientForm({**data, "code": "ac me"}, instance=Client(company=company))
    assert not form.is_valid() and "capital letters" in form.errors["code"][0]
    form = ClientForm({**data, "code": "acme-fr"}, instance=Client(company=company))
    assert form.is_valid(), form.errors
    assert form.save().code == "ACME-FR"
    # Another company may use the same code.
    other = ClientForm(data, instance=Client(company=CompanyFactory()))
    assert other.is_valid(), other.errors


@pytest.mark.django_db
def test_the_database_refuses_two_clients_with_one_code_in_a_company():
    from django.db import IntegrityError

    company = CompanyFactory()
    ClientFactory(company=company, code="ACME")
    ClientFactory(company=company)
    ClientFactory(company=company)  # no code: as many as you like
    with pytest.raises(IntegrityError), transaction.atomic():
        ClientFactory(company=company, code="ACME")


@pytest.mark.django_db
def test_the_numbering_page_explains_the_tokens_and_previews_an_example_client(client):
    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    page = client.get(reverse("numbering_settings")).content.decode()
    assert "{client_counter}" in page and 'name="client_padding"' in page
    form = {"invoice_pattern": "INV-{YY}{MM}-{counter}-{client_ref}-{client_counter}",
            "credit_note_pattern": "CN-{YYYY}-{counter}", "padding": "4",
            "client_padding": "3", "reset_period": "yearly", "fiscal_year_start": "1"}
    preview = client.post(reverse("numbering_preview"), form).content.decode()
    assert "-0001-ACME-001</dd>" in preview and "data-example-client" in preview
    refused = client.post(reverse("numbering_settings"),
                          {**form, "invoice_pattern": "INV-{YYYY}-{client_counter}"})
    assert refused.status_code == 200
    assert "two clients would get the same numbers" in refused.content.decode()
    assert client.post(reverse("numbering_settings"), form).status_code == 302
    assert NumberingSettings.for_company(member.company_id).invoice_pattern == \
        form["invoice_pattern"]


# --- Under concurrency, on PostgreSQL ------------------------------------------------------------


class Rollback(Exception):
    """Raised after the allocation to make the whole transaction roll back."""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_workers_two_clients_keep_every_counter_whole():
    company = per_client_company()
    clients = [ClientFactory(company=company, code=code) for code in ("ACME", "BOLT")]
    threads, per_thread = 8, 6
    plans = [[(InvoiceFactory(client=clients[(t + i) % 2]), (t * per_thread + i) % 4 == 0)
              for i in range(per_thread)] for t in range(threads)]
    outcomes, errors = [], []
    barrier = threading.Barrier(threads)

    def worker(plan):
        try:
            barrier.wait(timeout=30)
            for document, roll_back in plan:
                try:
                    with transaction.atomic():
                        assert send_document(document).number
                        if roll_back:  # after both counters were taken
                            raise Rollback
                except Rollback:
                    outcomes.append(("rolled back", document.client_id))
                else:
                    outcomes.append(("sent", document.client_id))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in workers), "a worker hung"
    assert not errors, errors[0]

    sent = [client_id for outcome, client_id in outcomes if outcome == "sent"]
    assert len(sent) == 36 and len(outcomes) == 48
    values = sorted(IssuedNumber.objects.values_list("value", flat=True))
    assert values == list(range(1, 37))
    for client in clients:
        mine = sorted(IssuedNumber.objects.filter(client_id=client.pk)
                      .values_list("client_value", flat=True))
        assert mine == list(range(1, sent.count(client.pk) + 1))
        assert ClientSequence.objects.get(client_id=client.pk).last == len(mine)
    numbers = list(IssuedNumber.objects.values_list("number", flat=True))
    assert len(set(numbers)) == len(numbers) == 36
    assert list(run_audit(AuditScope(company_id=company.pk)).findings) == []


@pytest.mark.django_db
def test_the_client_page_edits_and_shows_the_code(client):
    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    buyer = ClientFactory(company=member.company)
    form = client.get(reverse("client_edit", args=[buyer.pk])).content.decode()
    assert 'name="code"' in form
    data = {"name": buyer.name, "country": "FR", "code": "acme", "language": ""}
    assert client.post(reverse("client_edit", args=[buyer.pk]), data).status_code == 302
    buyer.refresh_from_db()
    assert buyer.code == "ACME"
    page = client.get(reverse("client_detail", args=[buyer.pk])).content.decode()
    assert "<dd data-client-code>ACME</dd>" in page


@pytest.mark.django_db
def test_a_clients_counter_never_moves_back(issue_on):
    from django.db import IntegrityError

    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    send_document(InvoiceFactory(client=acme))
    sequence = ClientSequence.objects.filter(client_id=acme.pk)
    for change in (lambda: sequence.update(last=0), sequence.delete):
        with pytest.raises(IntegrityError, match="never moves back"), transaction.atomic():
            change()
    assert sequence.get().last == 1


@pytest.mark.django_db
def test_a_clients_code_cannot_change_once_printed_with_its_counter(issue_on):
    """Its counter goes by the client: a new code, or the old one given to another client,
    would print a number already issued."""
    issue_on(date(2026, 1, 15))
    company = per_client_company()
    acme = ClientFactory(company=company, code="ACME")
    data = {"name": acme.name, "country": "FR", "language": "", "code": "ACMEX"}
    assert ClientForm(data, instance=Client.objects.get(pk=acme.pk)).is_valid()  # not yet
    send_document(InvoiceFactory(client=acme))
    form = ClientForm(data, instance=Client.objects.get(pk=acme.pk))
    assert not form.is_valid() and "cannot change" in form.errors["code"][0]
    same = ClientForm({**data, "code": "ACME"}, instance=Client.objects.get(pk=acme.pk))
    assert same.is_valid(), same.errors  # its other fields still can


@pytest.mark.django_db
def test_the_layout_cannot_change_while_quotes_count_by_client_alone():
    company = CompanyFactory()
    configure_numbering(company, quote_pattern="Q-{client_ref}-{YYYY}-{client_counter}")
    send_document(QuoteFactory(client=ClientFactory(company=company, code="ACME")))
    with pytest.raises(ValidationError) as caught:
        configure_numbering(company, quotes_share_invoice_counter=True)
    assert "cannot change" in str(caught.value)
