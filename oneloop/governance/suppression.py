"""The suppression list: identifiers of erased people, as salted hashes.

Identity resolution asks ``suppressed`` for every batch of events, so that re-ingesting an
erased person's old data (a replayed export, a CRM re-sync) does not bring them back. The
salt is made once per database by the migration; a hash cannot be read back, and without the
salt it cannot be checked against guesses either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.db import in_chunks
from oneloop.governance.privacy_models import SecretRow, SuppressionRow

SALT = "suppression_salt"


def _salt(session: Session) -> bytes:
    value = session.scalar(select(SecretRow.value).where(SecretRow.name == SALT))
    if value is None:  # only a database the migration did not make
        raise RuntimeError("the suppression salt is missing: run `oneloop db upgrade`")
    return value.encode()


def digest(salt: bytes, kind: str, value: str) -> str:
    return hmac.new(salt, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


def hashes(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The hash of each ``(type, normalised value)``."""
    salt = _salt(session)
    return {key: digest(salt, *key) for key in keys}


def suppressed(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The keys on the list: one indexed lookup per chunk, nothing when the list is empty."""
    wanted = set(keys)
    if not wanted or session.scalar(select(SuppressionRow.hash).limit(1)) is None:
        return set()
    by_hash = {h: key for key, h in hashes(session, wanted).items()}
    found: set[tuple[str, str]] = set()
    for part in in_chunks(sorted(by_hash)):
        found.update(
            by_hash[h]
            for h in session.scalars(
                select(SuppressionRow.hash).where(SuppressionRow.hash.in_(part))
            )
        )
    return found
