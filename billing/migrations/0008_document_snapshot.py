"""
Issued documents keep their content and their history:

- every document gets a ``snapshot`` column; documents issued before it existed are
  snapshotted from their data as it is now (their ledger entries carry no digest of it);
- the state must be one of the state machine's, and the database refuses the transitions
  the state machine does not allow (never back to draft, paid only from sent, cancelled only
  from sent once credit notes cover the invoice's total);
- documents issued before the history existed get their events now, so that the audit
  finds every issued document's state in its history;
- the guards of issued documents are installed again, covering the new column (they are
  dropped first: SQLite rebuilds the document tables, which the line tables' guards name).
"""

import json
from decimal import Decimal
from importlib import import_module
from types import SimpleNamespace

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone

from counters.dbguards import create_guard, drop_guard

document_guards = import_module("billing.migrations.0002_issued_documents_guards")

STATES = ["draft", "sent", "paid", "cancelled"]
KINDS = {"Invoice": "invoice", "CreditNote": "credit_note"}
TRANSITION_REFUSED = "This change of state is not allowed by the documents' state machine."


def allowed_transition(table, vendor):
    """SQL over OLD/NEW: the state changes the state machine allows on ``table``."""
    covered = (
        "(SELECT COALESCE(SUM(c.total), 0) FROM billing_creditnote c "
        "WHERE c.invoice_id = NEW.id AND c.state <> 'draft') >= NEW.total"
    )
    allowed = ["(OLD.state = 'draft' AND NEW.state = 'sent')"]
    if table == "billing_invoice":
        allowed += ["(OLD.state = 'sent' AND NEW.state = 'paid')",
                    f"(OLD.state = 'sent' AND NEW.state = 'cancelled' AND {covered})"]
    return " OR ".join(allowed)


def transition_guards(vendor):
    for table in ("billing_invoice", "billing_creditnote"):
        yield dict(name=f"{table}_transitions", table=table, event="UPDATE",
                   condition=f"OLD.state <> NEW.state AND NOT ({allowed_transition(table, vendor)})")


def drop_document_guards(apps, schema_editor):
    # SQLite rebuilds the document tables below, which the line tables' guards refer to.
    document_guards.remove(apps, schema_editor)


def install_guards(apps, schema_editor):
    document_guards.install(apps, schema_editor)
    for guard in transition_guards(schema_editor.connection.vendor):
        create_guard(schema_editor, message=TRANSITION_REFUSED, **guard)


def remove_guards(apps, schema_editor):
    for guard in transition_guards(schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])
    document_guards.remove(apps, schema_editor)


def snapshot_and_record_issued(apps, schema_editor):
    """Snapshot documents issued before snapshots, and give them their history."""
    from billing import money, snapshot
    from counters import chain
    from counters.models import StateEvent as CurrentStateEvent

    StateEvent = apps.get_model("counters", "StateEvent")
    EventChain = apps.get_model("counters", "EventChain")
    now = timezone.now()
    heads = {}
    for model_name, kind in KINDS.items():
        model = apps.get_model("billing", model_name)
        for document in (model.objects.exclude(state="draft").select_related("company", "client")
                         .order_by("company_id", "issue_date", "id")):
            if not document.snapshot:
                lines = [SimpleNamespace(
                    description=line.description, quantity=line.quantity,
                    unit_price=line.unit_price, tax_rate=line.tax_rate,
                    net_amount=money.line_net(line.quantity, line.unit_price))
                    for line in document.lines.order_by("position", "id")]
                document.kind = kind
                data = snapshot.build(document, lines)
                # The totals it was issued with, whatever today's rounding gives.
                data.update(subtotal=str(document.subtotal), tax=str(document.tax_total),
                            total=str(document.total))
                model.objects.filter(pk=document.pk).update(snapshot=snapshot.dumps(data))
            steps = [("draft", "sent")]
            if document.state != "sent":
                steps.append(("sent", document.state))
            for from_state, to_state in steps:
                seq, previous = heads.get(document.company_id, (0, chain.GENESIS))
                event = StateEvent(
                    company_id=document.company_id, seq=seq + 1, kind=kind,
                    document_id=document.pk, from_state=from_state, to_state=to_state,
                    actor_id=None, at=now, reason="Recorded when the history began.",
                    previous_hash=previous)
                event.event_hash = chain.record_hash(event, CurrentStateEvent)
                event.save(force_insert=True)
                heads[document.company_id] = (seq + 1, event.event_hash)
    for company_id, (last, last_hash) in heads.items():
        EventChain.objects.create(company_id=company_id, last=last, last_hash=last_hash)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_remove_company_clients_token'),
        ('counters', '0009_state_history'),
    ]

    operations = [
        migrations.RunPython(drop_document_guards, document_guards.install),
        migrations.AddField(
            model_name='creditnote',
            name='snapshot',
            field=models.TextField(blank=True, default='', editable=False, verbose_name='content at issue'),
        ),
        migrations.AddField(
            model_name='invoice',
            name='snapshot',
            field=models.TextField(blank=True, default='', editable=False, verbose_name='content at issue'),
        ),
        migrations.RunPython(snapshot_and_record_issued, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=Q(state__in=STATES), name='billing_invoice_state_valid'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=Q(state__in=["draft", "sent"]), name='billing_creditnote_state_valid'),
        ),
        migrations.RunPython(install_guards, remove_guards),
    ]
