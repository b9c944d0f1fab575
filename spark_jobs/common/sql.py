"""Spark SQL text for expressions built in Python: quoted identifiers and literals.

Building a wide projection with the Column API costs several Py4J calls per function applied; the same
projection as SQL text is one call (``selectExpr``), parsed in the JVM.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def ident(name: str) -> str:
    """A column or table name, backquoted."""
    return "`" + name.replace("`", "``") + "`"


def lit(value) -> str:
    """A Python value as a Spark SQL literal (strings with backslash escapes, as the SQL parser reads them)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"{value}L" if not -2**31 <= value < 2**31 else str(value)
    if isinstance(value, Decimal):
        return f"{value}BD"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP {lit(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {lit(value.isoformat())}"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}: {value!r}")
