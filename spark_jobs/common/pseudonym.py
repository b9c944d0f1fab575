"""Keyed pseudonyms for direct identifiers: HMAC-SHA256, computed inside Spark.

``pseudonym(key, domain, value)`` is the reference implementation (Python's hmac);
``pseudonym_sql`` builds the same HMAC as Spark SQL from sha2/concat so no Python UDF runs per
row. The domain (the silver column, e.g. ``person_pk``) keeps pseudonyms of different kinds of
identifier apart, and makes the same person number give the same pseudonym in every table.
The key comes from the settings' secret source and never from the repository.
"""

from __future__ import annotations

import hashlib
import hmac

BLOCK = 64  # SHA-256 block size in bytes


def normalise(value: str) -> str:
    return value.strip().upper()


def pseudonym(key: str, domain: str, value: str) -> str:
    msg = f"{domain}|{normalise(value)}".encode()
    return hmac.new(bytes.fromhex(key), msg, hashlib.sha256).hexdigest()


def _pads(key: str) -> tuple[str, str]:
    k = bytes.fromhex(key)
    if len(k) > BLOCK:
        k = hashlib.sha256(k).digest()
    k = k.ljust(BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in k).hex()
    opad = bytes(b ^ 0x5C for b in k).hex()
    return ipad, opad


def pseudonym_sql(key: str, domain: str, col: str) -> str:
    """Spark SQL for ``pseudonym(key, domain, <col>)`` over the SQL expression ``col``; null or blank gives null."""
    from spark_jobs.common.sql import lit

    ipad, opad = _pads(key)
    msg = f"encode(concat({lit(domain + '|')}, upper(trim({col}))), 'UTF-8')"
    inner = f"unhex(sha2(concat(unhex({lit(ipad)}), {msg}), 256))"
    outer = f"sha2(concat(unhex({lit(opad)}), {inner}), 256)"
    return f"CASE WHEN ({col}) IS NULL OR trim({col}) = '' THEN NULL ELSE {outer} END"
