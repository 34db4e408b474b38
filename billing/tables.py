"""
The documents of a table (the lists, the dashboard, a client's page), rendered by
``templates/billing/_document_table.html``.
"""

# What a row shows: its link, number, client, dates, state and total.
COLUMNS = ("number", "client__name", "issue_date", "due_date", "state", "total", "currency")


def table_documents(documents):
    """``documents`` (one kind, filtered, ordered) with their clients, read in one query."""
    # A quote's rows show its valid-until date (and whether it has passed) in the due column.
    extra = ("valid_until",) if hasattr(documents.model, "valid_until") else ()
    return documents.select_related("client").only(*COLUMNS, *extra)

