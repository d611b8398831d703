"""The base of the stores that are written once for both databases: the named
queries of one portable ``.sql`` file, run through the store's ``run_sql``."""

from __future__ import annotations

from typing import Any, ClassVar

from conveyor.domain.errors import NotFound
from conveyor.store.protocol import Store
from conveyor.store.queries import load_portable

Row = dict[str, Any]


class PortableStore:
    """Runs the queries of :attr:`sql_file` (a file next to this module) on ``store``."""

    sql_file: ClassVar[str]

    def __init__(self, store: Store) -> None:
        self.store = store
        self._sql = load_portable(self.sql_file, store.dialect)

    async def _rows(self, name: str, /, *, write: bool = False, **params: Any) -> list[Row]:
        """The rows of query ``name`` (in a write transaction if ``write``)."""
        (found,) = await self.store.run_sql([(self._sql[name], params)], write=write)
        return found

    async def _one(self, name: str, what: str, /, *, write: bool = False, **params: Any) -> Row:
        """The first row of query ``name``; ``NotFound`` naming ``what`` if none."""
        found = await self._rows(name, write=write, **params)
        if not found:
            raise NotFound(f"{what} does not exist")
        return found[0]
