"""Electronic invoices (EN 16931): their validation against the official rules."""
