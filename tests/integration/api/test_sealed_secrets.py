"""The server seals the secrets it keeps with its key, and will not start with another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from conveyor.domain.webhooks import SubscriptionSpec
from conveyor.server import Server
from conveyor.store.sealing import WrongSecretKey, is_sealed
from tests.integration.api.conftest import server_settings

pytestmark = pytest.mark.anyio

HOOK = SubscriptionSpec(url="http://127.0.0.1:9/hook", event_types=("job.*",))


async def _raw(server: Server, sql: str) -> list[dict[str, Any]]:
    [rows] = await server.store.run_sql([(sql, {})], write=False)
    return rows


async def test_a_node_with_another_key_refuses_to_start(migrated_url: str, tmp_path: Path) -> None:
    first = Server(server_settings(migrated_url, data_dir=tmp_path / "node-a"))
    await first.start()
    try:
        [key] = await _raw(first, "SELECT secret FROM signing_keys")
        assert is_sealed(key["secret"])
        assert (tmp_path / "node-a" / "secret.key").stat().st_mode & 0o077 == 0
    finally:
        await first.stop()
    for other in (
        {"data_dir": tmp_path / "node-b"},
        {"secret_key": SecretStr("node b's own long key")},
    ):
        with pytest.raises(WrongSecretKey, match="same CONVEYOR_SECRET_KEY"):
            await Server(server_settings(migrated_url, **other)).start()
    again = Server(server_settings(migrated_url, data_dir=tmp_path / "node-a"))
    await again.start()
    await again.stop()


async def test_secrets_kept_in_plain_are_sealed_when_the_server_starts(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = server_settings(migrated_url, secret_key=SecretStr("the key, long enough"))
    server = Server(settings)
    await server.start()
    try:
        webhook = await server.webhook_store.add("default", HOOK, "whsec_cGxhaW4", server.now())
        plain = f"UPDATE webhooks SET secret = 'whsec_cGxhaW4' WHERE id = {webhook.id}"
        await server.store.run_sql([(plain, {})])
    finally:
        await server.stop()
    restarted = Server(settings)
    await restarted.start()
    try:
        [row] = await _raw(restarted, "SELECT secret FROM webhooks")
        assert is_sealed(row["secret"])
        assert (
            await restarted.webhook_store.get("default", webhook.id, secrets=True)
        ).secret == "whsec_cGxhaW4"
    finally:
        await restarted.stop()


async def test_the_key_is_changed_by_starting_with_the_old_one_as_previous(
    migrated_url: str,
) -> None:
    old, new = SecretStr("the old key, long enough"), SecretStr("the new key, long enough")
    server = Server(server_settings(migrated_url, secret_key=old))
    await server.start()
    try:
        webhook = await server.webhook_store.add("default", HOOK, "whsec_b2xk", server.now())
    finally:
        await server.stop()
    changing = Server(server_settings(migrated_url, secret_key=new, previous_secret_key=old))
    await changing.start()
    await changing.stop()
    for refused in (old, SecretStr("a third key, long enough")):
        with pytest.raises(WrongSecretKey):
            await Server(server_settings(migrated_url, secret_key=refused)).start()
    changed = Server(server_settings(migrated_url, secret_key=new))
    await changed.start()
    try:
        assert (
            await changed.webhook_store.get("default", webhook.id, secrets=True)
        ).secret == "whsec_b2xk"
    finally:
        await changed.stop()


async def test_the_data_folder_holds_the_key_and_the_embedded_workers_artifacts(
    migrated_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    server = Server(server_settings(migrated_url, data_dir=folder))
    await server.start()
    try:
        assert (folder / "secret.key").is_file()
        assert server._embedded_app().data_dir == folder
    finally:
        await server.stop()
