"""
The history of issued documents: every change of state, recorded in the transaction that
makes it, chained per company so that a removed or rewritten event shows in the audit.
"""

from django.db import connection
from django.utils import timezone

from . import chain
from .models import EventChain, StateEvent
from .services import TransactionRequired, take_next


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
    seq, previous_hash = take_next(EventChain, company_id=company_id)
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


def history_of(kind, document_id):
    """A document's events, oldest first."""
    return StateEvent.objects.filter(kind=str(kind), document_id=document_id).order_by("seq")
