"""The base of the stores that are written once for both databases: the named
queries of one portable ``.sql`` file, run through the store's ``run_sql``."""

from __future__ import annotations

from typing import Any, ClassVar

from conveyor.domain.errors import NotFound
from conveyor.store.protocol import Store
from conveyor.store.queries import load_portable
from conveyor.store.sealing import SecretBox, required_box, seal_secrets

Row = dict[str, Any]


class PortableStore:
    """Runs the queries of :attr:`sql_file` (a file next to this module) on ``store``."""

    sql_file: ClassVar[str]

    def __init__(self, store: Store, box: SecretBox | None = None) -> None:
        self.store = store
        self._box = box
        self._sql = load_portable(self.sql_file, store.dialect)

    @property
    def box(self) -> SecretBox:
        """What seals this store's secrets (given by whoever made a store that keeps any)."""
        return required_box(self._box, self)

    def _opened(self, stored: str | None, what: str) -> str | None:
        """:meth:`SecretBox.open_or_report` with this store's box."""
        return self.box.open_or_report(stored, what)

    async def _seal_secrets(self, *columns: str) -> int:
        """:func:`~conveyor.store.sealing.seal_secrets` for ``columns``, whose queries
        are ``stored_<column>`` and ``seal_<column>``."""
        queries = [(self._sql[f"stored_{c}"], self._sql[f"seal_{c}"]) for c in columns]
        return await seal_secrets(self.store, self.box, queries)

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
