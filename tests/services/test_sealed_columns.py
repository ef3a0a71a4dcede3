"""The list of sealed columns that key rotation and restore walk is every sealed column of the models (named
`*_encrypted` by convention: the other binary columns hold public data, such as WebAuthn credential ids)."""

from __future__ import annotations

from sqlalchemy import LargeBinary

from server.db import Base
from server.services.sealed_columns import SEALED_COLUMNS


def test_every_encrypted_column_of_the_models_is_listed_as_sealed() -> None:
    binary = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, LargeBinary) and column.name.endswith("_encrypted")
    }
    listed = {(sealed.table_name, sealed.blob_column) for sealed in SEALED_COLUMNS}
    assert binary == listed
    for sealed in SEALED_COLUMNS:
        assert sealed.id_column in Base.metadata.tables[sealed.table_name].primary_key.columns
