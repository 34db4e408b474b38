"""
What the API reads and writes. Amounts, quantities and rates are decimal strings
("120.00"), never JSON numbers: a float cannot hold a cent exactly. Inputs are checked by
the same Django forms as the pages (``billing.forms``), so each rule is written once.
"""

from datetime import date as Date
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from ninja import Field, Schema
from pydantic import PlainSerializer, WithJsonSchema

DECIMAL_PATTERN = r"^-?\d{1,15}(\.\d{1,3})?$"
Dec = Annotated[
    Decimal,
    PlainSerializer(lambda value: str(value), return_type=str),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["120.00"]}),
]
# Read with a point for decimals whatever the Accept-Language (forms.read_plainly), which
# sets the language of the messages only.
DecIn = Annotated[str, Field(max_length=32, examples=["120.00"],
                             description="A decimal number as a string, with a point.")]
Text = Annotated[str, Field(max_length=500)]
MAX_ID = 2**63 - 1  # a bigint: larger ids are refused by the schema, not the database
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


# --- Clients ------------------------------------------------------------------------------


class ClientFields(Schema):
    code: Annotated[str, Field(max_length=16, description=(
        "Printed by {client_ref} in numbers with a per-client counter."))] = ""
    email: Annotated[str, Field(max_length=254)] = ""
    language: Annotated[str, Field(max_length=10, description="Empty: the company's.")] = ""
    street: Annotated[str, Field(max_length=200)] = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    city: Annotated[str, Field(max_length=100)] = ""
    country: Annotated[str, Field(max_length=2, description="ISO 3166 code.")] = ""
    vat_id: Annotated[str, Field(max_length=32)] = ""
    endpoint_scheme: Annotated[str, Field(max_length=4)] = ""
    endpoint_id: Annotated[str, Field(max_length=100)] = ""
    reference: Annotated[str, Field(max_length=100)] = ""
    attach_ubl: bool = False


class ClientIn(ClientFields):
    name: Annotated[str, Field(max_length=200)]


class ClientPatch(Schema):
    name: Annotated[str, Field(max_length=200)] | None = None
    code: Annotated[str, Field(max_length=16)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    language: Annotated[str, Field(max_length=10)] | None = None
    street: Annotated[str, Field(max_length=200)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    country: Annotated[str, Field(max_length=2)] | None = None
    vat_id: Annotated[str, Field(max_length=32)] | None = None
    endpoint_scheme: Annotated[str, Field(max_length=4)] | None = None
    endpoint_id: Annotated[str, Field(max_length=100)] | None = None
    reference: Annotated[str, Field(max_length=100)] | None = None
    attach_ubl: bool | None = None


class ClientId(Schema):
    id: int
    name: str


class ClientOut(ClientFields, ClientId):  # id and name first
    pass


class ClientPage(Schema):
    items: list[ClientOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null "
                                                "at the end.")


# --- Documents ----------------------------------------------------------------------------


class LineIn(Schema):
    description: Annotated[str, Field(max_length=500)]
    quantity: DecIn = "1"
    unit_price: DecIn
    tax_rate: DecIn = "20"
    unit_code: Annotated[str, Field(max_length=3)] = "C62"
    tax_category: Annotated[str, Field(max_length=2)] = "S"
    tax_exemption_reason: Annotated[str, Field(max_length=300)] = ""
    tax_exemption_code: Annotated[str, Field(max_length=30)] = ""


class LineOut(Schema):
    id: int
    position: int
    description: str
    quantity: Dec
    unit_code: str
    unit_price: Dec
    tax_category: str
    tax_rate: Dec
    tax_exemption_reason: str
    tax_exemption_code: str
    net_amount: Dec


Lines = Annotated[list[LineIn], Field(max_length=200)]


class DraftFields(Schema):
    currency: Annotated[str, Field(max_length=3)] | None = Field(
        None, description="Empty: the company's default currency.")
    series: Id | None = Field(None, description="The numbering series it is numbered in "
                                           "(an id from GET /numbering/series); empty: its "
                                           "client's, else the company's default.")
    buyer_reference: Annotated[str, Field(max_length=100)] = ""
    notes: Annotated[str, Field(max_length=2000)] = ""


class InvoiceIn(DraftFields):
    client: Id
    due_date: Date | None = None
    lines: Lines


class CreditNoteIn(DraftFields):
    client: Id
    invoice: Id | None = Field(None, description="The issued invoice it corrects.")
    reason: Text = ""
    lines: Lines


class InvoicePatch(Schema):
    """What to change; ``lines``, when given, replace every line."""

    client: Id | None = None
    series: Id | None = None
    due_date: Date | None = None
    currency: Annotated[str, Field(max_length=3)] | None = None
    buyer_reference: Annotated[str, Field(max_length=100)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
    lines: Lines | None = None


class CreditNotePatch(Schema):
    """What to change; ``lines``, when given, replace every line."""

    client: Id | None = None
    series: Id | None = None
    invoice: Id | None = None
    reason: Text | None = None
    currency: Annotated[str, Field(max_length=3)] | None = None
    buyer_reference: Annotated[str, Field(max_length=100)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
    lines: Lines | None = None


class DocumentSummary(Schema):
    id: int
    state: str
    number: str | None = Field(description="Given when the document is sent; null for a "
                                           "draft.")
    client: int
    series: int | None = Field(description="The numbering series chosen (a draft) or numbered "
                                           "in (issued); null: the client's, else the "
                                           "default.")
    issue_date: Date | None
    due_date: Date | None
    currency: str
    buyer_reference: str
    notes: str
    subtotal: Dec
    tax_total: Dec
    total: Dec
    created_at: datetime
    updated_at: datetime


class InvoiceSummary(DocumentSummary):
    open_amount: Dec = Field(description="What is left to pay (0 for a draft).")


class CreditNoteSummary(DocumentSummary):
    invoice: int | None
    invoice_number: str
    reason: str


PREVIEW = "A draft: the number it would take if sent now (consumes nothing); else null."


class InvoiceOut(InvoiceSummary):
    paid: Dec
    number_preview: str | None = Field(description=PREVIEW)
    lines: list[LineOut]


class CreditNoteOut(CreditNoteSummary):
    number_preview: str | None = Field(description=PREVIEW)
    lines: list[LineOut]


class InvoicePage(Schema):
    items: list[InvoiceSummary]
    next_cursor: str | None


class CreditNotePage(Schema):
    items: list[CreditNoteSummary]
    next_cursor: str | None


# --- Actions ------------------------------------------------------------------------------


class SendIn(Schema):
    email: bool = Field(False, description="Also e-mail the PDF to the client.")


class CreditLineIn(Schema):
    line: Id = Field(description="The id of one of the invoice's lines.")
    quantity: DecIn | None = Field(None, description="Empty: the whole line.")


class CreditIn(Schema):
    """Credit the open amount (no ``lines`` nor ``amount``), chosen lines, or an amount
    before tax at one of the invoice's rates."""

    reason: Text = ""
    lines: Annotated[list[CreditLineIn], Field(max_length=200)] | None = None
    amount: DecIn | None = None
    rate: Annotated[str, Field(max_length=20)] | None = Field(
        None, description="With `amount`: one of the invoice's rates, e.g. \"20.00\".")


class CancelIn(Schema):
    reason: Text


class CancelOut(Schema):
    invoice: InvoiceOut
    credit_note: CreditNoteOut | None


class PaymentIn(Schema):
    amount: DecIn
    method: Annotated[str, Field(max_length=20, examples=["bank_transfer"])]
    date: Date | None = Field(None, description="Empty: today.")
    reference: Annotated[str, Field(max_length=200)] = ""


class ReverseIn(Schema):
    reason: Text


class PaymentOut(Schema):
    id: int
    invoice: int
    date: Date
    amount: Dec
    method: str
    reference: str
    recorded_at: datetime
    reversed: bool


class NumberingPreview(Schema):
    invoice: str
    credit_note: str


class NumberingSeriesOut(Schema):
    id: int
    name: str
    code: str = Field(description="Empty for the company's first series.")
    is_default: bool


class SeriesOut(Schema):
    series: str
    period: str
    first_value: int | None
    last_value: int | None
    issued: int
    sequence_last: int
    explained_jumps: int
    last_issue_date: Date | None


class AuditOut(Schema):
    series: list[SeriesOut]
    findings: int
    first_findings: list[dict]
