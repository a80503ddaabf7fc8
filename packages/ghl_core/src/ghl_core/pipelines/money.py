"""Monetary values: integer minor units and an ISO 4217 currency code, checked with JSON pointers."""

from __future__ import annotations

from typing import Any

from ghl_core.pipelines.models import Money
from ghl_core.shared.errors import FieldError

# The active ISO 4217 codes (list one, 2024). A fixed list rather than a dependency: it changes rarely,
# and a typo such as "USS" must be refused before it splits a board's totals.
_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    ZWL
"""
ISO_4217 = frozenset(_CODES.split())
# Ten trillion dollars in cents: far above any deal, far below where a board's sum could overflow.
MAX_AMOUNT = 10**15


def clean_money(value: Any, pointer: str, errors: list[FieldError]) -> Money | None:
    """`{"amount": 150000, "currency": "usd"}` -> Money(150000, "USD"); None clears the value."""
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append(FieldError(pointer, 'must be an object like {"amount": 150000, "currency": "USD"}'))
        return None
    before = len(errors)
    for key in sorted(set(value) - {"amount", "currency"}):
        errors.append(FieldError(f"{pointer}/{key}", "is not a field of a monetary value"))
    amount = value.get("amount")
    # bool is an int in Python; a float is refused even when whole, so no caller relies on rounding.
    if isinstance(amount, bool) or not isinstance(amount, int):
        errors.append(FieldError(f"{pointer}/amount", "must be an integer number of minor units (cents)"))
    elif not 0 <= amount <= MAX_AMOUNT:
        errors.append(FieldError(f"{pointer}/amount", f"must be between 0 and {MAX_AMOUNT}"))
    currency = value.get("currency")
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if code not in ISO_4217:
        errors.append(FieldError(f"{pointer}/currency", "must be an ISO 4217 currency code, e.g. USD"))
    if len(errors) > before:
        return None
    assert isinstance(amount, int)  # noqa: S101 - checked above
    return Money(amount=amount, currency=code)
