"""Field types that accept exactly the JSON forms the contract names, with a JSON Schema saying
the same, so that a publisher validating with the schema and the worker agree.

pydantic's lax mode alone would also take Arabic-Indic digits ("١٢٣"), "1_000", " 12.5 ",
"1e3", epoch numbers or strings as timestamps and `true` as 1. Each type here is a union of the
forms it takes, each form strict, built from pydantic-core schemas so that validation stays in
Rust (a Python gate per field cost ~0.6 µs each, measured). The patterns use `[0-9]`, never
`\\d` (Unicode digits), and are the very text the JSON Schema carries. A value no form takes
fails with one error naming what the field expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

DECIMAL_ERROR = "decimal_text"
"""The error type of a value no decimal form takes (`streams.core.validation` reads it)."""


def positive_decimal_pattern(integer_digits: int, fraction_digits: int) -> str:
    """The plain decimal strings above zero with at most `integer_digits` digits before the
    point and `fraction_digits` after it: no sign, exponent, spaces, "_" or leading zeros.

    Zero is excluded by the pattern itself (without look-ahead, which some JSON Schema
    validators lack), so the schema refuses "0.00" as the model does.
    """
    fraction = f"(\\.[0-9]{{1,{fraction_digits}}})?"
    alternatives = [f"[1-9][0-9]{{0,{integer_digits - 1}}}{fraction}"]
    for zeros in range(fraction_digits):  # 0.x: the first non-zero digit after `zeros` zeros
        rest = fraction_digits - 1 - zeros
        alternatives.append("0\\." + "0" * zeros + "[1-9]" + (f"[0-9]{{0,{rest}}}" if rest else ""))
    return f"({'|'.join(alternatives)})"


@dataclass(frozen=True)
class PlainDecimal:
    """`Annotated[Decimal, PlainDecimal(12, 6, "...")]`: a positive `Decimal` sent as a plain
    decimal JSON string ("12.50", every digit kept) or as a JSON number, with at most
    `integer_digits` digits before the point and `fraction_digits` after it."""

    integer_digits: int
    fraction_digits: int
    description: str

    @property
    def body(self) -> str:
        return positive_decimal_pattern(self.integer_digits, self.fraction_digits)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def decimal(*, strict: bool) -> core_schema.CoreSchema:
            return core_schema.decimal_schema(
                gt=Decimal(0),
                max_digits=self.integer_digits + self.fraction_digits,
                decimal_places=self.fraction_digits,
                allow_inf_nan=False,
                strict=strict,
            )

        number = core_schema.union_schema(
            [core_schema.int_schema(strict=True), core_schema.float_schema(strict=True)]
        )
        return core_schema.union_schema(
            [
                core_schema.chain_schema(
                    [
                        core_schema.str_schema(pattern=f"^{self.body}$", strict=True),
                        decimal(strict=False),
                    ]
                ),
                core_schema.chain_schema([number, decimal(strict=False)]),
                decimal(strict=True),  # a `Decimal`, when a model is built in Python
            ],
            mode="left_to_right",
            custom_error_type=DECIMAL_ERROR,
            custom_error_message=(
                "must be a positive decimal: a JSON string such as '12.50' (ASCII digits, no "
                f"sign, exponent or leading zero) or a JSON number, with at most "
                f"{self.integer_digits} digits before the point and {self.fraction_digits} after"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "string", "pattern": f"^{self.body}$"},
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 10**self.integer_digits,
                },
            ],
            "description": self.description,
        }


@dataclass(frozen=True)
class WholeNumber:
    """`Annotated[int, Field(ge=...), WholeNumber()]`: a JSON integer (4, or 4.0, which JSON
    Schema also counts as an integer), never `true` or a string of digits; then the constraints
    of the annotations before it. Also for integer `Literal`s, which take `true` for 1 even in
    strict mode."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        whole = core_schema.union_schema(
            [
                core_schema.int_schema(strict=True),
                core_schema.chain_schema(
                    [core_schema.float_schema(strict=True), core_schema.int_schema(strict=False)]
                ),
            ],
            mode="left_to_right",
            custom_error_type="whole_number",
            custom_error_message="must be a JSON integer",
        )
        return core_schema.chain_schema([whole, handler(source)])

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        assert schema["type"] == "chain"
        return handler(schema["steps"][1])  # what the annotations before this one say


_DATE_TIME = (
    "{year}-[0-9]{{2}}-[0-9]{{2}}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\\.[0-9]+)?"
    "([Zz]|[+-][0-9]{{2}}:[0-9]{{2}})"
)
"""RFC 3339 `date-time` (section 5.6): a `T`, seconds, and an offset are required."""


@dataclass(frozen=True)
class Rfc3339:
    """`Annotated[datetime, Rfc3339("...")]`: an aware `datetime` sent as an RFC 3339 string;
    never an epoch number or string. With `years` (a regular expression of four digits, and
    `years_text` saying it in words) the year as written must match it."""

    description: str
    years: str = "[0-9]{4}"
    years_text: str = ""

    @property
    def body(self) -> str:
        return _DATE_TIME.format(year=self.years)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        within = f" in the years {self.years_text}" if self.years_text else ""
        return core_schema.union_schema(
            [
                core_schema.chain_schema(
                    [
                        core_schema.str_schema(pattern=f"^{self.body}$", strict=True),
                        # lax: parses the checked text (and checks the calendar: no month 13)
                        core_schema.datetime_schema(tz_constraint="aware", strict=False),
                    ]
                ),
                core_schema.datetime_schema(tz_constraint="aware", strict=True),  # from Python
            ],
            mode="left_to_right",
            custom_error_type="rfc3339",
            custom_error_message=(
                f"must be an RFC 3339 date-time string with seconds and a UTC offset{within}, "
                "e.g. 2026-11-22T10:00:00+00:00"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{self.body}$",
            "description": self.description,
        }
