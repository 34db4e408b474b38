"""
Issue 16, items 3 and 4: keyed ledger hashes, signed checkpoints that anchor each series'
head, and sequences that never move back. Damage is done with raw SQL, as in test_audit.
"""

import hashlib
import hmac
import json
from datetime import date
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from billing import services
from billing import settings as folio_settings
from billing.models import Invoice
from billing.services import send_document
from counters import audit as audit_module
from counters import chain, checkpoint
from counters.dbguards import guards_lifted
from counters.models import IssuedNumber, Sequence, StateEvent
from counters.services import set_next_number

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory
from .test_audit import delete_invoices, findings, sql

pytestmark = pytest.mark.django_db

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def unkeyed(settings):
    """No ledger key unless a test asks for one (whatever the environment says)."""
    settings.FOLIO_LEDGER_KEY = None


@pytest.fixture
def keyed(unkeyed, settings):
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


def test_a_digester_keyed_once_hashes_each_content_on_its_own(settings):
    """The audit sets the key up once for a million contents: each still gets its own HMAC,
    not one of the contents before it."""
    settings.FOLIO_LEDGER_KEY = KEY
    digest = chain.digester()
    contents = ["a|b", "a|b", "c", ""]
    assert [digest(content) for content in contents] == [
        hmac.new(KEY, content.encode(), "sha256").hexdigest() for content in contents]
    assert chain.digester(b"")("a|b") == hashlib.sha256(b"a|b").hexdigest()


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
    ledger = [f for f in tampered if f["message"].startswith("ledger entry")]
    history = [f for f in tampered if f["message"].startswith("the history breaks")]
    assert status == 1 and len(ledger) == 4 and len(history) == 4


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
    # The content the database writes for the keyed path is entry_content, to the character.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT l.id, {chain.content_sql('l', connection.vendor)} "
                       f"FROM counters_issuednumber l", [])  # [] so that %% is %
        written = dict(cursor.fetchall())
    assert written == {e.pk: chain.entry_content(e) for e in IssuedNumber.objects.all()}


# --- Sequences never move back ---------------------------------------------------------------


def test_the_database_refuses_lowering_a_sequence_below_its_ledger(ledger):
    for statement in (
        "UPDATE counters_sequence SET last = 2 WHERE series = 'invoice'",
        "UPDATE counters_sequence SET last = 0 WHERE series = 'credit_note'",
        "UPDATE counters_sequence SET period = '2025' WHERE series = 'invoice'",
        "UPDATE counters_sequence SET company_id = company_id + 1 WHERE series = 'invoice'",
        "DELETE FROM counters_sequence WHERE series = 'invoice'",
    ):
        with pytest.raises(IntegrityError, match="never moves back"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)
    assert Sequence.objects.get(series="invoice").last == 3


def test_sequences_move_forward_only(ledger):
    """Not even back into values an explained jump skipped: they were handed out too."""
    invoices, _ = ledger
    set_next_number(company_id=invoices[0].company_id, series="invoice", period="2026",
                    next_value=10, reason="paper invoices")
    assert Sequence.objects.get(series="invoice").last == 9
    with pytest.raises(IntegrityError, match="never moves back"), transaction.atomic():
        Sequence.objects.filter(series="invoice").update(last=5)
    assert send_document(InvoiceFactory(client=invoices[0].client)).number == "INV-2026-0010"
    # An unused sequence (nothing handed out) may still go.
    Sequence.objects.create(company_id=invoices[0].company_id, series="invoice", period="2027")
    Sequence.objects.filter(period="2027").delete()


def test_the_sequence_guards_read_only_their_own_row():
    """A trigger naming the ledger would break SQLite's rebuild of the ledger table in any
    later migration ("error in trigger …: no such table")."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("counters.migrations.0010_sequences_never_move_back")
    for guard in migration.guards(apps, connection.vendor):
        assert "SELECT" not in guard["condition"].upper()
        assert IssuedNumber._meta.db_table not in guard["condition"]


def test_a_sequence_behind_its_ledger_is_reported(ledger):
    sql("UPDATE counters_sequence SET last = 1 WHERE series = 'invoice'")
    status, behind, _ = findings("sequence_behind")
    assert status == 1
    assert [(b["series"], b["values"], b["message"]) for b in behind] == [
        ("invoice", [1, 3], "the sequence's last value is 1 but its ledger has issued up to 3")]


# --- The key ---------------------------------------------------------------------------------


def test_the_key_comes_from_the_environment_or_a_file(monkeypatch, tmp_path):
    for name in ("FOLIO_LEDGER_KEY", "FOLIO_LEDGER_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert folio_settings._ledger_key() is None
    monkeypatch.setenv("FOLIO_LEDGER_KEY", KEY.decode())
    assert folio_settings._ledger_key() == KEY
    key_file = tmp_path / "ledger.key"
    key_file.write_bytes(KEY + b"\n")
    monkeypatch.setenv("FOLIO_LEDGER_KEY_FILE", str(key_file))
    with pytest.raises(ImproperlyConfigured, match="not both"):
        folio_settings._ledger_key()
    monkeypatch.delenv("FOLIO_LEDGER_KEY")
    assert folio_settings._ledger_key() == KEY
    key_file.write_bytes(b"")
    with pytest.raises(ImproperlyConfigured, match="is empty"):
        folio_settings._ledger_key()
    monkeypatch.setenv("FOLIO_LEDGER_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        folio_settings._ledger_key()
    monkeypatch.delenv("FOLIO_LEDGER_KEY_FILE")
    monkeypatch.setenv("FOLIO_LEDGER_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match="at least 16 bytes"):
        folio_settings._ledger_key()


# --- Checkpoints -----------------------------------------------------------------------------


def run(*args, stdin=None):
    """(exit status, stdout, stderr + error message) of ``manage.py audit_gaps *args``."""
    out, err = StringIO(), StringIO()
    options = {"stdin": stdin} if stdin is not None else {}
    try:
        call_command("audit_gaps", *args, stdout=out, stderr=err, **options)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def anchored(keyed, ledger, tmp_path):
    """The ledger, keyed, with a checkpoint written while it was clean: its path."""
    path = tmp_path / "checkpoint.json"
    status, out, _err = run("--write-checkpoint", str(path))
    assert status == 0, out
    assert f"Checkpoint of 3 chain(s) written to {path}." in out
    return path


def check(path, *args):
    status, out, err = run("--checkpoint", str(path), "--json", *args)
    report = json.loads(out) if out else None
    return status, report, err


def truncated(path):
    status, report, err = check(path)
    assert status == 1, err
    return [f for f in report["findings"] if f["kind"] == "truncated"]


def test_without_a_key_checkpoints_are_refused(ledger, tmp_path):
    for option in ("--write-checkpoint", "--checkpoint"):
        status, _out, err = run(option, str(tmp_path / "c.json"))
        assert status == 2
        assert (f"{option} needs the ledger key, which the database does not hold: set "
                f"FOLIO_LEDGER_KEY or FOLIO_LEDGER_KEY_FILE.") in err
    assert not (tmp_path / "c.json").exists()


def test_a_checkpoint_holds_every_series_head_signed(anchored, ledger):
    invoices, credit_note = ledger
    document = json.loads(anchored.read_text())
    assert document["format"] == "folio-checkpoint/1"
    assert document["key_id"] == chain.key_id()
    heads = {(c["kind"], c["series"], c["last"], c["number"], c["hash"])
             for c in document["chains"] if c["kind"] == "ledger"}
    assert heads == {
        ("ledger", "invoice", 3, "INV-2026-0003",
         IssuedNumber.objects.get(number="INV-2026-0003").entry_hash),
        ("ledger", "credit_note", 1, "CN-2026-0001",
         IssuedNumber.objects.get(number="CN-2026-0001").entry_hash),
    }
    last_event = StateEvent.objects.order_by("seq").last()
    assert [c for c in document["chains"] if c["kind"] == "history"] == [
        {"kind": "history", "company_id": last_event.company_id, "last": last_event.seq,
         "hash": last_event.event_hash}]
    payload = {k: v for k, v in document.items() if k != "signature"}
    expected = hmac.new(KEY, json.dumps(payload, sort_keys=True, separators=(",", ":"))
                        .encode(), "sha256").hexdigest()
    assert document["signature"] == expected
    # The books verified against it, before and after more issues.
    assert check(anchored)[0] == 0
    send_document(InvoiceFactory(client=invoices[0].client))
    assert check(anchored)[0] == 0


def test_the_checkpoint_can_go_to_standard_output_and_come_from_standard_input(keyed, ledger):
    status, out, err = run("--write-checkpoint", "-")
    assert status == 0
    assert "All series complete: no findings." in err  # the report, on standard error
    assert "Checkpoint of 3 chain(s) written to standard output." in err
    assert len(json.loads(out)["chains"]) == 3  # standard output holds the checkpoint only
    assert run("--checkpoint", "-", stdin=StringIO(out))[0] == 0
    status, _out, err = run("--checkpoint", "-", stdin=StringIO(out.replace('"last": 3',
                                                                           '"last": 2')))
    assert status == 2 and "signature does not match" in err
    # The nightly line: check against the last one (stdin) and write the next (stdout).
    status, again, err = run("--checkpoint", "-", "--write-checkpoint", "-", stdin=StringIO(out))
    assert status == 0 and "All series complete" in err
    assert json.loads(again)["chains"] == json.loads(out)["chains"]


def test_deleting_the_last_invoices_and_rolling_back_the_counter_is_truncated(anchored,
                                                                                ledger):
    """The end of a series removed whole: the chain that remains is consistent."""
    invoices, _ = ledger
    sql("DELETE FROM counters_issuednumber WHERE number IN ('INV-2026-0002', 'INV-2026-0003')")
    delete_invoices(invoices[1], invoices[2])
    sql("UPDATE counters_sequence SET last = 1, last_hash = %s WHERE series = 'invoice'",
        [IssuedNumber.objects.get(number="INV-2026-0001").entry_hash])
    assert findings()[0] == 0  # without the anchor, nothing shows
    found = truncated(anchored)
    assert [(f["series"], f["values"], f["numbers"]) for f in found] == [
        ("invoice", [1, 3], ["INV-2026-0003"])]
    assert found[0]["message"].startswith(
        "the series ends at INV-2026-0001 but the checkpoint of ")
    assert found[0]["message"].endswith(" has it up to INV-2026-0003")
    _, text, _ = run("--checkpoint", str(anchored))
    assert "TRUNCATED: " in text


def test_a_series_deleted_whole_is_truncated(anchored, ledger):
    _, credit_note = ledger
    sql("DELETE FROM counters_issuednumber WHERE kind = 'credit_note'")
    sql("DELETE FROM billing_creditnoteline WHERE document_id = %s", [credit_note.pk])
    sql("DELETE FROM billing_creditnote WHERE id = %s", [credit_note.pk])
    sql("DELETE FROM counters_sequence WHERE series = 'credit_note'")
    found = truncated(anchored)
    assert [f["message"].split(" but ")[0] for f in found] == ["the series has no entries"]


def test_truncated_then_issued_again_is_truncated(anchored, ledger):
    """The last invoice deleted and its number issued again to another document."""
    invoices, _ = ledger
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0003'")
    delete_invoices(invoices[2])
    sql("UPDATE counters_sequence SET last = 2, last_hash = %s WHERE series = 'invoice'",
        [IssuedNumber.objects.get(number="INV-2026-0002").entry_hash])
    again = send_document(InvoiceFactory(client=invoices[0].client))
    assert again.number == "INV-2026-0003"
    send_document(InvoiceFactory(client=invoices[0].client))
    assert findings()[0] == 0
    found = truncated(anchored)
    assert [f["message"].split(" has another hash")[0] for f in found] == ["INV-2026-0003"]
    assert "the chain up to it was rewritten" in found[0]["message"]


def test_a_chain_recomputed_after_an_edit_is_truncated(keyed, anchored, ledger, settings):
    """Even someone holding the key (or an unkeyed installation) cannot rewrite a
    checkpointed chain unseen."""
    sql("UPDATE counters_issuednumber SET total = 1 WHERE number = 'INV-2026-0002'")
    sql("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0 "
        "WHERE number = 'INV-2026-0002'")
    previous = IssuedNumber.objects.get(number="INV-2026-0001").entry_hash
    for number in ("INV-2026-0002", "INV-2026-0003"):
        entry = IssuedNumber.objects.get(number=number)
        entry.previous_hash = previous
        previous = chain.entry_hash(entry)
        sql("UPDATE counters_issuednumber SET previous_hash = %s, entry_hash = %s WHERE id = %s",
            [entry.previous_hash, previous, entry.pk])
    sql("UPDATE counters_sequence SET last_hash = %s WHERE series = 'invoice'", [previous])
    assert findings()[0] == 0
    assert [f["numbers"] for f in truncated(anchored)] == [["INV-2026-0003"]]


def test_a_forged_or_foreign_checkpoint_is_refused(anchored, settings, tmp_path):
    text = anchored.read_text()
    cases = {
        "raised": (text.replace('"last": 3', '"last": 4'), "its signature does not match"),
        "unsigned": (json.dumps({k: v for k, v in json.loads(text).items()
                                 if k != "signature"}), "it carries no signature"),
        "empty": ("", "not JSON"),
        "list": ("[]", "a JSON object is expected"),
        "other format": (text.replace("folio-checkpoint/1", "x/2"), "not a checkpoint of format"),
    }
    for name, (forged, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(forged)
        status, _out, err = run("--checkpoint", str(path))
        assert (status, message in err, "refused" in err) == (2, True, True), (name, err)
    status, _out, err = run("--checkpoint", str(tmp_path / "nowhere.json"))
    assert status == 2 and "Cannot read the checkpoint" in err
    settings.FOLIO_LEDGER_KEY = b"another key of at least 16 bytes"
    status, _out, err = run("--checkpoint", str(anchored))
    assert status == 2 and "it was signed with another key" in err


def test_a_checkpoint_signed_right_but_malformed_is_refused(keyed, ledger, tmp_path):
    heads = checkpoint.current_heads()
    for bad, message in (
        ([{**heads[0], "kind": "nonsense"}], "unknown chain"),
        ([{**heads[0], "last": "3"}], "last missing or not a int"),
        ([{k: v for k, v in heads[0].items() if k != "hash"}], "hash missing"),
    ):
        document = checkpoint.build(bad, KEY)
        path = tmp_path / "c.json"
        path.write_text(json.dumps(document))
        status, _out, err = run("--checkpoint", str(path))
        assert status == 2 and message in err, err


def test_no_checkpoint_is_written_over_findings_or_for_part_of_the_books(keyed, ledger,
                                                                          tmp_path):
    path = tmp_path / "c.json"
    status, _out, err = run("--write-checkpoint", str(path), "--series", "invoice")
    assert status == 2 and "--write-checkpoint covers every series" in err
    sql("UPDATE counters_sequence SET last = 1 WHERE series = 'invoice'")
    status, out, err = run("--write-checkpoint", str(path))
    assert status == 1 and "SEQUENCE_BEHIND" in out and "No checkpoint written." in err
    assert not path.exists()


def test_checkpoints_are_generic_over_kinds_of_chain(keyed, ledger, tmp_path, monkeypatch):
    """Another chain registers its heads and its check; both then travel in checkpoints."""
    state = {"hash": "a" * 64}

    def heads():
        return [{"company_id": 1, "last": 7, "hash": state["hash"]}]

    def check_heads(checkpointed, scope, written_at):
        for head in checkpointed:
            if head["hash"] != state["hash"]:
                yield audit_module.Finding(audit_module.TRUNCATED, company_id=1,
                                           message=f"demo chain rewritten since {written_at}")

    monkeypatch.setitem(checkpoint.CHAIN_KINDS, "demo", checkpoint.ChainKind(
        fields={"company_id": int, "last": int, "hash": str}, heads=heads, check=check_heads))
    path = tmp_path / "c.json"
    assert run("--write-checkpoint", str(path))[0] == 0
    kinds = sorted(c["kind"] for c in json.loads(path.read_text())["chains"])
    assert kinds == ["demo", "history", "ledger", "ledger"]
    assert check(path)[0] == 0
    state["hash"] = "b" * 64
    status, report, _ = check(path)
    assert status == 1 and report["findings"][0]["message"].startswith("demo chain rewritten")


def test_checkpoint_findings_respect_the_scope(anchored, ledger):
    invoices, _ = ledger
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0003'")
    delete_invoices(invoices[2])
    sql("UPDATE counters_sequence SET last = 2 WHERE series = 'invoice'")
    assert check(anchored, "--series", "credit_note")[0] == 0
    assert check(anchored, "--series", "invoice")[0] == 1
    assert Invoice.objects.filter(state="sent").count() == 2


# --- Turning a key on: re-keying ------------------------------------------------------------


def rekey(*args):
    out = StringIO()
    try:
        call_command("rekey_ledger", *args, stdout=out)
    except CommandError as error:
        return error.returncode, str(error)
    return 0, out.getvalue()


def test_rekeying_turns_an_unkeyed_ledger_into_a_keyed_one(ledger, settings, tmp_path):
    invoices, _ = ledger
    assert rekey()[0] == 2  # no key configured
    settings.FOLIO_LEDGER_KEY = KEY
    assert findings()[0] == 1  # every entry: hashed without the key
    status, text = rekey()
    assert status == 0 and text.startswith("Re-keyed 4 ledger entries")
    assert findings()[0] == 0
    assert Sequence.objects.get(series="invoice").last_hash == IssuedNumber.objects.get(
        number="INV-2026-0003").entry_hash
    assert send_document(InvoiceFactory(client=invoices[0].client)).number == "INV-2026-0004"
    assert findings()[0] == 0
    # Rotation: the old key from a file, a new one configured.
    old = tmp_path / "old.key"
    old.write_bytes(KEY)
    settings.FOLIO_LEDGER_KEY = b"the next key, 16 bytes or more"
    assert findings()[0] == 1
    assert rekey("--from-key-file", str(old))[0] == 0
    assert findings()[0] == 0


def test_rekeying_refuses_a_ledger_that_does_not_verify(ledger, settings):
    sql("UPDATE counters_issuednumber SET total = 1 WHERE number = 'INV-2026-0002'")
    hashes = sorted(IssuedNumber.objects.values_list("entry_hash", flat=True))
    settings.FOLIO_LEDGER_KEY = KEY
    status, text = rekey()
    assert status == 1
    assert text.startswith("1 ledger entries do not verify under the old hashing (first: "
                           "INV-2026-0002). Nothing was changed")
    assert sorted(IssuedNumber.objects.values_list("entry_hash", flat=True)) == hashes


# --- Threat model rows (README "Threat model") not covered elsewhere -------------------------


def test_raising_a_sequence_without_a_reason_is_a_gap(ledger):
    """The application's database user may raise a sequence (nothing refuses it): the
    skipped values are unexplained."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE counters_sequence SET last = 6 WHERE series = 'invoice'")
    status, gaps, _ = findings("gap")
    assert status == 1
    assert [(g["values"], g["message"]) for g in gaps] == [
        ([4, 5, 6], "value 4..6 missing (after the last entry)")]


def test_explained_jumps_are_append_only_and_deleting_one_is_a_gap(ledger):
    invoices, _ = ledger
    set_next_number(company_id=invoices[0].company_id, series="invoice", period="2026",
                    next_value=10, reason="paper invoices")
    assert findings()[0] == 0
    for statement in ("UPDATE counters_numberjump SET last_value = 5",
                      "DELETE FROM counters_numberjump"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(statement)
    sql("DELETE FROM counters_numberjump")
    status, gaps, _ = findings("gap")
    assert status == 1 and [g["values"] for g in gaps] == [[4, 5, 6, 7, 8, 9]]


def forge_an_issue(invoices, key):
    """Issue INV-2026-0004 behind Folio's back: the document, its ledger entry chained to
    the head, the sequence moved on, its history, hashed with ``key`` (b"": plain SHA-256)."""
    head = IssuedNumber.objects.get(number="INV-2026-0003")
    draft = InvoiceFactory(client=invoices[0].client)
    with connection.cursor() as cursor:  # the application's database user may do this
        cursor.execute(
            "UPDATE billing_invoice SET state = 'sent', number = 'INV-2026-0004', "
            "sequence_value = 4, issue_date = %s, subtotal = 100, tax_total = 0, total = 100 "
            "WHERE id = %s", [head.issue_date, draft.pk])
    entry = IssuedNumber(company_id=head.company_id, series="invoice", period="2026", value=4,
                         number="INV-2026-0004", kind="invoice", document_id=draft.pk,
                         issue_date=head.issue_date, total=100, currency=head.currency,
                         previous_hash=head.entry_hash)
    entry.entry_hash = chain.digest(chain.entry_content(entry), key)
    entry.save(force_insert=True)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE counters_sequence SET last = 4, last_hash = %s "
                       "WHERE series = 'invoice'", [entry.entry_hash])
    # And its history: an event chained to the company's last one, the head moved on.
    from django.utils import timezone

    from counters.models import EventChain, StateEvent

    head_event = StateEvent.objects.filter(company_id=head.company_id).order_by("seq").last()
    event = StateEvent(company_id=head.company_id, seq=head_event.seq + 1, kind="invoice",
                       document_id=draft.pk, from_state="draft", to_state="sent",
                       at=timezone.now(), previous_hash=head_event.event_hash)
    event.event_hash = chain.record_hash(event, key=key)
    event.save(force_insert=True)
    EventChain.objects.filter(company_id=head.company_id).update(
        last=event.seq, last_hash=event.event_hash)


def test_an_issue_forged_without_the_key_is_tampered(keyed, ledger):
    invoices, _ = ledger
    forge_an_issue(invoices, b"")
    status, tampered, _ = findings("tampered")
    assert status == 1 and [t["numbers"] for t in tampered] == [["INV-2026-0004"], []]
    assert tampered[1]["message"].startswith("the history breaks at event 5")


def test_without_a_key_a_forged_issue_is_indistinguishable(ledger):
    invoices, _ = ledger
    forge_an_issue(invoices, b"")
    assert findings()[0] == 0


def test_a_history_cut_short_after_a_checkpoint_is_truncated(anchored, ledger):
    invoices, _ = ledger
    services.mark_paid(invoices[0])  # a later event, then removed with the ones before it
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM counters_stateevent WHERE seq >= 4")
        cursor.execute("UPDATE counters_eventchain SET last = 3, last_hash = "
                       "(SELECT event_hash FROM counters_stateevent WHERE seq = 3)")
        cursor.execute("UPDATE billing_invoice SET state = 'sent' WHERE id = %s",
                       [invoices[0].pk])
    messages = [f["message"] for f in truncated(anchored)]
    assert any(m.startswith("the history ends before event 4") for m in messages), messages
