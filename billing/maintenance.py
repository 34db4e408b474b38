"""Maintenance that must rewrite history: only for scratch data (benchmarks, load runs)."""

from django.db import connection

from counters.dbguards import guards_lifted

# Child tables first. Each deletes the rows of the given companies.
_PURGE = [
    "DELETE FROM billing_invoiceline WHERE document_id IN "
    "(SELECT id FROM billing_invoice WHERE company_id IN ({ids}))",
    "DELETE FROM billing_creditnoteline WHERE document_id IN "
    "(SELECT id FROM billing_creditnote WHERE company_id IN ({ids}))",
    "DELETE FROM billing_quoteline WHERE document_id IN "
    "(SELECT id FROM billing_quote WHERE company_id IN ({ids}))",
    "DELETE FROM billing_paymentreversal WHERE payment_id IN "
    "(SELECT id FROM billing_payment WHERE company_id IN ({ids}))",
    "DELETE FROM billing_payment WHERE company_id IN ({ids})",
    "DELETE FROM counters_issuednumber WHERE company_id IN ({ids})",
    "DELETE FROM counters_numberjump WHERE company_id IN ({ids})",
    "DELETE FROM counters_stateevent WHERE company_id IN ({ids})",
    "DELETE FROM counters_eventchain WHERE company_id IN ({ids})",
    "DELETE FROM billing_emaildelivery WHERE company_id IN ({ids})",
    "DELETE FROM billing_reminder WHERE invoice_id IN "
    "(SELECT id FROM billing_invoice WHERE company_id IN ({ids}))",
    "DELETE FROM billing_sendbatchitem WHERE batch_id IN "
    "(SELECT id FROM billing_sendbatch WHERE company_id IN ({ids}))",
    "DELETE FROM billing_sendbatch WHERE company_id IN ({ids})",
    "DELETE FROM billing_creditnote WHERE company_id IN ({ids})",
    "DELETE FROM billing_invoice WHERE company_id IN ({ids})",
    "DELETE FROM billing_quote WHERE company_id IN ({ids})",
    "DELETE FROM billing_recurringline WHERE document_id IN "
    "(SELECT id FROM billing_recurringinvoice WHERE company_id IN ({ids}))",
    "DELETE FROM billing_recurringinvoice WHERE company_id IN ({ids})",
    "DELETE FROM counters_clientsequence WHERE company_id IN ({ids})",
    "DELETE FROM counters_sequence WHERE company_id IN ({ids})",
    "DELETE FROM counters_numberingsettingschange WHERE company_id IN ({ids})",
    "DELETE FROM billing_client WHERE company_id IN ({ids})",
    "DELETE FROM counters_numberingsettings WHERE company_id IN ({ids})",
    "DELETE FROM billing_idempotencykey WHERE company_id IN ({ids})",
    "DELETE FROM billing_apitoken WHERE company_id IN ({ids})",
    "DELETE FROM billing_membership WHERE company_id IN ({ids})",
    "DELETE FROM billing_company WHERE id IN ({ids})",
]


def purge_companies(company_ids):
    """
    Delete every row of these companies, issued documents and ledger included, past the
    triggers that protect them.
    """
    ids = list(company_ids)
    if not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    with guards_lifted(connection), connection.cursor() as cursor:
        for statement in _PURGE:
            cursor.execute(statement.format(ids=marks), ids)
