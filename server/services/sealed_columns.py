"""Every column that holds a sealed secret, with the associated data its blobs were sealed under.

Key rotation re-seals them and a restore checks them; a new sealed column must be added here (a test
compares this list with the models).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnClause, TableClause, column, table


@dataclass(frozen=True)
class SealedColumn:
    table_name: str
    id_column: str  # the row's id, a string, which the associated data names
    blob_column: str
    purpose: str  # the associated data is `<purpose>:<row id>`

    def associated_data(self, row_id: str) -> str:
        return f"{self.purpose}:{row_id}"

    def clause(self) -> tuple[TableClause, ColumnClause[str], ColumnClause[bytes]]:
        """A lightweight table (no model: a restore reads databases of older migrations too)."""
        row_id: ColumnClause[str] = column(self.id_column)
        blob: ColumnClause[bytes] = column(self.blob_column)
        return table(self.table_name, row_id, blob), row_id, blob


SEALED_COLUMNS = (
    SealedColumn("signing_keys", "kid", "private_key_encrypted", "signing-key"),
    SealedColumn("tokens", "id", "secret_encrypted", "token"),
    SealedColumn("radius_clients", "client_id", "secret_encrypted", "radius"),
)
