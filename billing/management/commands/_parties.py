"""
A seller and a buyer with everything an e-invoice needs (EN 16931, Peppol BIS 3.0), for the
companies and clients that the demo, the benchmarks and the load test create: their
documents are sent through the same checks as anyone's.
"""

SELLER = {
    "street": "3 place des Arts", "postal_code": "75001", "city": "Paris", "country": "FR",
    "vat_id": "FR44732829320", "registration_id": "732829320",
    "iban": "FR7630006000011234567890189", "bic": "BNPAFRPP",
    "endpoint_scheme": "0009", "endpoint_id": "73282932000017",
}
BUYER = {
    "street": "12 rue du Four", "postal_code": "69001", "city": "Lyon", "country": "FR",
    "vat_id": "FR03552081317", "endpoint_scheme": "0009", "endpoint_id": "55208131700018",
}
