from django.dispatch import Signal

# Sent after the transaction that issued a document has committed.
# Arguments: document (the issued document), user (who issued it, or None).
document_issued = Signal()
