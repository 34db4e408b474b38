"""
The history of issued documents: every change of state, recorded in the transaction that
makes it, chained per company so that a removed or rewritten event shows in the audit.
"""

from django.db import connection
from django.utils import timezone

from . import chain
from .models import EventChain, StateEvent
from .services import TransactionRequired


def record_state_change(*, company_id, kind, document_id, from_state, to_state, user=None,
                        reason="") -> StateEvent:
    """
    Record that the document ``(kind, document_id)`` went from ``from_state`` to
    ``to_state``. Must run inside the transaction that changes the state: the company's
    chain head stays locked until it commits.
    """
    if not connection.in_atomic_block:
        raise TransactionRequired(
            "record_state_change() must run inside the transaction that changes the state."
        )
    seq, previous_hash = _advance(company_id)
    event = StateEvent(
        company_id=company_id, seq=seq, kind=str(kind), document_id=document_id,
        from_state=str(from_state), to_state=str(to_state),
        actor=user if user is not None and user.is_authenticated else None,
        at=timezone.now(), reason=reason[:500], previous_hash=previous_hash,
    )
    event.event_hash = chain.record_hash(event)
    event.save(force_insert=True)
    EventChain.objects.filter(company_id=company_id).update(last_hash=event.event_hash)
    return event


def _advance(company_id) -> tuple[int, str]:
    """The company's next event number and its last event's hash, the head row locked."""
    table = connection.ops.quote_name(EventChain._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS h (company_id, last, last_hash) VALUES (%s, 1, %s) "
            f"ON CONFLICT (company_id) DO UPDATE SET last = h.last + 1 "
            f"RETURNING last, last_hash",
            [company_id, chain.GENESIS],
        )
        return cursor.fetchone()


def history_of(kind, document_id):
    """A document's events, oldest first."""
    return StateEvent.objects.filter(kind=str(kind), document_id=document_id).order_by("seq")
