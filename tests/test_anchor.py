"""
Issue 16, items 3 and 4: keyed ledger hashes, signed checkpoints that anchor each series'
head, and sequences that never move back. Damage is done with raw SQL, as in test_audit.
"""

import hashlib
import hmac
from datetime import date

import pytest
from django.db import IntegrityError, connection, transaction

from billing.services import send_document
from counters import audit as audit_module
from counters import chain
from counters.models import IssuedNumber, Sequence
from counters.services import set_next_number

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory
from .test_audit import findings, sql

pytestmark = pytest.mark.django_db

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def keyed(settings):
    settings.FOLIO_LEDGER_KEY = KEY


@pytest.fixture
def ledger(issue_on):
    """INV-2026-0001..0003 and CN-2026-0001, hashed with whatever key is configured."""
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    invoices = [send_document(InvoiceFactory(client=client)) for _ in range(3)]
    credit_note = send_document(CreditNoteFactory(client=client))
    return invoices, credit_note


def content_of(number):
    return chain.entry_content(IssuedNumber.objects.get(number=number))


# --- Keyed hashes ----------------------------------------------------------------------------


def test_digest_is_sha256_without_a_key_and_hmac_with_one(settings):
    settings.FOLIO_LEDGER_KEY = None
    assert chain.digest("a|b") == hashlib.sha256(b"a|b").hexdigest()
    settings.FOLIO_LEDGER_KEY = KEY
    assert chain.digest("a|b") == hmac.new(KEY, b"a|b", "sha256").hexdigest()
    assert chain.digest("a|b", b"") == hashlib.sha256(b"a|b").hexdigest()  # forced unkeyed
    assert chain.key_id() and KEY.hex() not in chain.key_id() and len(chain.key_id()) == 16


def test_with_a_key_the_ledger_is_hmac_chained_and_audits_clean(keyed, ledger):
    previous = chain.GENESIS
    for entry in IssuedNumber.objects.filter(series="invoice").order_by("value"):
        assert entry.previous_hash == previous
        expected = hmac.new(KEY, chain.entry_content(entry).encode(), "sha256").hexdigest()
        assert entry.entry_hash == expected
        previous = expected
    assert findings()[0] == 0


def test_with_a_key_a_chain_recomputed_without_it_is_tampered(keyed, ledger):
    """Someone with database rights rewrites a total and recomputes the chain in SQL."""
    sql("UPDATE counters_issuednumber SET total = 1 WHERE number = 'INV-2026-0003'")
    entry = IssuedNumber.objects.get(number="INV-2026-0003")
    sql("UPDATE counters_issuednumber SET entry_hash = %s WHERE id = %s",
        [hashlib.sha256(chain.entry_content(entry).encode()).hexdigest(), entry.pk])
    sql("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0 "
        "WHERE number = 'INV-2026-0003'")
    status, tampered, _ = findings("tampered")
    assert status == 1
    assert [t["message"] for t in tampered] == [
        "ledger entry INV-2026-0003 was altered after it was issued (its hash no longer "
        "matches its content)"]


def test_without_the_key_the_same_rewrite_goes_unseen(ledger):
    """Why the key matters: unkeyed, a recomputed chain is consistent (only a checkpoint
    catches it, as `truncated`)."""
    sql("UPDATE counters_issuednumber SET total = 1 WHERE number = 'INV-2026-0003'")
    entry = IssuedNumber.objects.get(number="INV-2026-0003")
    sql("UPDATE counters_issuednumber SET entry_hash = %s WHERE id = %s",
        [chain.entry_hash(entry), entry.pk])
    sql("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0 "
        "WHERE number = 'INV-2026-0003'")
    sql("UPDATE counters_sequence SET last_hash = %s WHERE series = 'invoice'",
        [chain.entry_hash(entry)])
    assert findings()[0] == 0


def test_a_keyed_installation_reports_entries_hashed_without_the_key(settings, ledger):
    """All or nothing: turning a key on over an unkeyed ledger reports every entry until
    the ledger is re-keyed (see the README's procedure)."""
    settings.FOLIO_LEDGER_KEY = KEY
    status, tampered, _ = findings("tampered")
    assert status == 1 and len(tampered) == 4


def test_the_sql_and_python_hash_checks_agree_on_the_same_rows(ledger):
    sql("UPDATE counters_issuednumber SET total = 12.5 WHERE number = 'INV-2026-0002'")
    sql("UPDATE counters_issuednumber SET issue_date = '2026-03-01' WHERE kind = 'credit_note'")
    scope = audit_module.AuditScope()
    in_sql = list(audit_module._sql_hash_mismatches(scope))
    in_python = list(audit_module._keyed_hash_mismatches(scope, b""))  # b"": unkeyed SHA-256
    assert in_sql == in_python
    assert [row[4] for row in in_sql] == ["CN-2026-0001", "INV-2026-0002"]
    # And Python's recomputation is entry_hash for every untouched row.
    with connection.cursor() as cursor:
        columns = ", ".join(IssuedNumber._meta.get_field(n).column for n in chain.CONTENT_FIELDS)
        cursor.execute(f"SELECT {columns}, entry_hash FROM counters_issuednumber")
        rows = cursor.fetchall()
    assert sum(chain.row_hash(row[:-1]) == row[-1] for row in rows) == 2


# --- Sequences never move back ---------------------------------------------------------------


def test_the_database_refuses_lowering_a_sequence_below_its_ledger(ledger):
    for statement in (
        "UPDATE counters_sequence SET last = 2 WHERE series = 'invoice'",
        "UPDATE counters_sequence SET last = 0 WHERE series = 'credit_note'",
        "UPDATE counters_sequence SET period = '2025' WHERE series = 'invoice'",
        "DELETE FROM counters_sequence WHERE series = 'invoice'",
    ):
        with pytest.raises(IntegrityError, match="never moves back"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)
    assert Sequence.objects.get(series="invoice").last == 3


def test_sequences_still_move_forward_and_down_to_their_ledger(ledger):
    invoices, _ = ledger
    set_next_number(company_id=invoices[0].company_id, series="invoice", period="2026",
                    next_value=10, reason="paper invoices")
    assert Sequence.objects.get(series="invoice").last == 9
    # Lowering within explained values is not what the guard is about (the audit is).
    Sequence.objects.filter(series="invoice").update(last=3)
    assert send_document(InvoiceFactory(client=invoices[0].client)).number == "INV-2026-0004"


def test_a_sequence_behind_its_ledger_is_reported(ledger):
    sql("UPDATE counters_sequence SET last = 1 WHERE series = 'invoice'")
    status, behind, _ = findings("sequence_behind")
    assert status == 1
    assert [(b["series"], b["values"], b["message"]) for b in behind] == [
        ("invoice", [1, 3], "the sequence's last value is 1 but its ledger has issued up to 3")]
