"""
Payments in the database, whatever writes to it:

- payments and their reversals are never changed or deleted (triggers refuse UPDATE and
  DELETE); a payment goes only to a sent invoice of its own company, a reversal names a
  payment of its own company;
- the invoices' state machine (billing 0008's trigger, replaced): *paid* only from *sent* once
  payments (reversed ones left out) and issued credit notes cover the total; *paid* back to
  *sent* only in the transaction that writes a reversal of one of the invoice's payments, and
  only when they no longer cover it; *cancelled* only without payments.

"In the transaction that writes a reversal": on PostgreSQL each reversal records the
top-level transaction that wrote it (``txid``, a column of the database's own, set to
``txid_current()``); on SQLite, which writes one transaction at a time, the reversal must be
the row the connection inserted last (``last_insert_rowid()``), as
``billing.services.reverse_payment`` does.
"""

from importlib import import_module

from django.db import migrations

from counters.dbguards import create_guard, drop_guard

snapshot_migration = import_module("billing.migrations.0008_document_snapshot")

APPEND_ONLY = "Payments and their reversals cannot be changed or deleted; reverse a payment instead."
PAYMENT_REFUSED = "A payment goes to a sent invoice of its own company."
REVERSAL_REFUSED = "A reversal names a payment of its own company, in its own transaction."
TRANSITION_REFUSED = snapshot_migration.TRANSITION_REFUSED


def cents(sql):
    return f"ROUND(({sql}) * 100)"


# What an invoice (NEW) has received, reversed payments left out, and what credits it.
PAID = cents(
    "SELECT COALESCE(SUM(p.amount), 0) FROM billing_payment p WHERE p.invoice_id = NEW.id "
    "AND NOT EXISTS (SELECT 1 FROM billing_paymentreversal r WHERE r.payment_id = p.id)")
CREDITED_NET = cents(
    "SELECT COALESCE(SUM(c.subtotal), 0) FROM billing_creditnote c "
    "WHERE c.invoice_id = NEW.id AND c.state <> 'draft'")
CREDITED_TOTAL = cents(
    "SELECT COALESCE(SUM(c.total), 0) FROM billing_creditnote c "
    "WHERE c.invoice_id = NEW.id AND c.state <> 'draft'")
COVERED = (f"({CREDITED_NET} >= ROUND(NEW.subtotal * 100) "
           f"OR {CREDITED_TOTAL} + {PAID} >= ROUND(NEW.total * 100))")


def reversal_written_now(vendor):
    """SQL: a reversal of one of NEW's payments was written in this transaction."""
    this_one = ("r.txid = txid_current()" if vendor == "postgresql"
                else "r.id = last_insert_rowid()")
    return ("EXISTS (SELECT 1 FROM billing_paymentreversal r JOIN billing_payment p "
            f"ON p.id = r.payment_id WHERE p.invoice_id = NEW.id AND {this_one})")


def allowed_invoice_transition(vendor):
    credits_cover_net = (
        "(SELECT ROUND(COALESCE(SUM(c.subtotal), 0) * 100) FROM billing_creditnote c "
        "WHERE c.invoice_id = NEW.id AND c.state <> 'draft') >= ROUND(NEW.subtotal * 100)")
    return " OR ".join([
        "(OLD.state = 'draft' AND NEW.state = 'sent')",
        f"(OLD.state = 'sent' AND NEW.state = 'paid' AND {PAID} > 0 AND {COVERED})",
        f"(OLD.state = 'paid' AND NEW.state = 'sent' AND NOT {COVERED} "
        f"AND {reversal_written_now(vendor)})",
        f"(OLD.state = 'sent' AND NEW.state = 'cancelled' AND {credits_cover_net} "
        f"AND {PAID} = 0)",
    ])


def invoice_transitions(vendor):
    return dict(name="billing_invoice_transitions", table="billing_invoice", event="UPDATE",
                condition=f"OLD.state <> NEW.state AND NOT ({allowed_invoice_transition(vendor)})",
                message=TRANSITION_REFUSED)


def payment_guards(vendor):
    for table in ("billing_payment", "billing_paymentreversal"):
        yield dict(name=f"{table}_no_update", table=table, event="UPDATE", condition="1 = 1",
                   message=APPEND_ONLY)
        yield dict(name=f"{table}_no_delete", table=table, event="DELETE", condition="1 = 1",
                   message=APPEND_ONLY)
    yield dict(
        name="billing_payment_to_sent_invoice", table="billing_payment", event="INSERT",
        condition="NOT EXISTS (SELECT 1 FROM billing_invoice i WHERE i.id = NEW.invoice_id "
                  "AND i.state = 'sent' AND i.company_id = NEW.company_id)",
        message=PAYMENT_REFUSED)
    same_company = ("NOT EXISTS (SELECT 1 FROM billing_payment p WHERE p.id = NEW.payment_id "
                    "AND p.company_id = NEW.company_id)")
    if vendor == "postgresql":
        same_company += " OR NEW.txid <> txid_current()"
    yield dict(name="billing_paymentreversal_own_payment", table="billing_paymentreversal",
               event="INSERT", condition=same_company, message=REVERSAL_REFUSED)


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_paymentreversal "
                              "ADD COLUMN txid bigint NOT NULL DEFAULT txid_current()")
    for guard in payment_guards(vendor):
        create_guard(schema_editor, **guard)
    create_guard(schema_editor, **invoice_transitions(vendor))


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    # The state machine as billing 0008 left it.
    for guard in snapshot_migration.transition_guards(vendor):
        if guard["table"] == "billing_invoice":
            create_guard(schema_editor, message=TRANSITION_REFUSED, **guard)
    for guard in payment_guards(vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])
    if vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_paymentreversal DROP COLUMN txid")


class Migration(migrations.Migration):
    dependencies = [("billing", "0015_payments")]
    operations = [migrations.RunPython(install, remove)]
