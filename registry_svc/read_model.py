"""Read models for lists, alias history and lookups: PostgreSQL tables kept by a
projection of the registry's event log.

Rows and the tracking position are written in the same transaction (the
library's `PostgresTrackingRecorder` row), so a crash never applies an event
twice or skips one. The tables can be dropped and rebuilt from the log at any
time; the rebuild processes events in batches per transaction because one
transaction per event is ~30x slower.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import singledispatchmethod
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg import Cursor
from psycopg.sql import SQL, Identifier

from mlxhub.read_model import ReadModel
from registry_svc.domain import Dataset, Model

TABLES = {
    "registry_models": (
        "name text PRIMARY KEY, id uuid UNIQUE NOT NULL, base_model text NOT NULL, description text NOT NULL, tags jsonb NOT NULL,"
        " latest_version bigint NOT NULL DEFAULT 0, aliases jsonb NOT NULL DEFAULT '{{}}', etag text NOT NULL,"
        " created_by text NOT NULL, create_time timestamptz NOT NULL, update_time timestamptz NOT NULL"
    ),
    "registry_model_versions": (
        "model text NOT NULL, version bigint NOT NULL, artifact_path text NOT NULL, kind text NOT NULL,"
        " files jsonb NOT NULL, metrics jsonb NOT NULL, description text NOT NULL, base_version text NOT NULL,"
        " lineage jsonb NOT NULL, status text NOT NULL, created_by text NOT NULL, create_time timestamptz NOT NULL,"
        " PRIMARY KEY (model, version)"
    ),
    "registry_datasets": (
        "name text PRIMARY KEY, path text NOT NULL, sha256 text NOT NULL, size_bytes bigint NOT NULL,"
        " record_count bigint NOT NULL, format text NOT NULL, description text NOT NULL, created_by text NOT NULL,"
        " create_time timestamptz NOT NULL"
    ),
    "registry_alias_moves": (
        "position bigint PRIMARY KEY, model text NOT NULL, alias text NOT NULL, version bigint NOT NULL,"
        " previous_version bigint NOT NULL, principal text NOT NULL, move_time timestamptz NOT NULL"
    ),
}

MODEL_COLUMNS = "name, base_model, description, tags, latest_version, aliases, etag, created_by, create_time, update_time"
VERSION_COLUMNS = (
    "v.model, v.version, v.artifact_path, v.kind, v.files, v.metrics, v.description, v.base_version, v.lineage,"
    " v.status, v.created_by, v.create_time, m.aliases"
)
DATASET_COLUMNS = "name, path, sha256, size_bytes, record_count, format, description, created_by, create_time"
# List orders: order_by value -> (sort column, descending). Rows tie-break on name, the primary key,
# so (sort key, name) is unique and keyset pages never skip or repeat a row.
MODEL_ORDERS = {
    "name": ("name", False), "name desc": ("name", True),
    "create_time": ("create_time", False), "create_time desc": ("create_time", True),
    "update_time": ("update_time", False), "update_time desc": ("update_time", True),
}
DATASET_ORDERS = {k: v for k, v in MODEL_ORDERS.items() if not k.startswith("update_time")}


def _contains(columns: tuple[str, ...], text: str) -> tuple[str, list[Any]]:
    """Case-insensitive substring match on any of `columns` (no LIKE, so % and _ are plain text)."""
    sql = " OR ".join(f"strpos(lower({c}), lower(%s)) > 0" for c in columns)
    return f"({sql})", [text] * len(columns)


def _keyset(order: tuple[str, bool], after: list[Any] | None) -> tuple[str, list[Any], str]:
    """WHERE clause after the page's last (sort key, name), and the ORDER BY for `order`."""
    column, desc = order
    direction = " DESC" if desc else ""
    keys = f"{column}{direction}, name{direction}" if column != "name" else f"name{direction}"
    if after is None:
        return "", [], keys
    op = "<" if desc else ">"
    if column == "name":
        return f"name {op} %s", [after[-1]], keys
    return f"({column}, name) {op} (%s::timestamptz, %s)", [after[0], after[1]], keys


class RegistryReadModel(ReadModel):
    """Tables of the read model plus the tracking row, in one recorder."""

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        for table, columns in TABLES.items():
            self.sql_create_statements.append(
                SQL("CREATE TABLE IF NOT EXISTS {}.{} (" + columns + ")").format(self.schema, Identifier(table))
            )
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS registry_alias_moves_by_alias ON {}.registry_alias_moves (model, alias, position)").format(self.schema)
        )
        # Versions trained on a dataset (ListDatasetVersions), newest first.
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS registry_model_versions_by_dataset ON {}.registry_model_versions"
                " ((lineage->>'dataset'), create_time DESC, model DESC, version DESC)").format(self.schema)
        )

    @singledispatchmethod
    def apply(self, domain_event: Any, curs: Cursor, position: int) -> None:
        """Events that change no read model."""

    @apply.register
    def _(self, e: Model.ModelRegistered, curs: Cursor, position: int) -> None:
        curs.execute(
            "INSERT INTO registry_models (name, id, base_model, description, tags, etag, created_by, create_time,"
            " update_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (e.name, e.originator_id, e.base_model, e.description, json.dumps(e.tags), str(e.originator_version),
             e.meta.get("principal", ""), e.timestamp, e.timestamp),
        )

    @apply.register
    def _(self, e: Model.ModelUpdated, curs: Cursor, position: int) -> None:
        sets = [SQL("{} = %s").format(Identifier(field)) for field in e.changes]
        values = [json.dumps(v) if field == "tags" else v for field, v in e.changes.items()]
        curs.execute(
            SQL("UPDATE registry_models SET {}, etag = %s, update_time = %s WHERE name = %s").format(SQL(", ").join(sets)),
            (*values, str(e.originator_version), e.timestamp, self._model_name(curs, e)),
        )

    @apply.register
    def _(self, e: Model.ModelVersionCreated, curs: Cursor, position: int) -> None:
        name = self._model_name(curs, e)
        curs.execute(
            "INSERT INTO registry_model_versions (model, version, artifact_path, kind, files, metrics, description,"
            " base_version, lineage, status, created_by, create_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'READY', %s, %s)",
            (name, e.version, e.artifact_path, e.kind, json.dumps(e.files), json.dumps(e.metrics), e.description,
             e.base_version, json.dumps(e.lineage), e.meta.get("principal", ""), e.create_time),
        )
        curs.execute(
            "UPDATE registry_models SET latest_version = GREATEST(latest_version, %s), etag = %s, update_time = %s"
            " WHERE name = %s",
            (e.version, str(e.originator_version), e.timestamp, name),
        )

    @apply.register
    def _(self, e: Model.AliasMoved, curs: Cursor, position: int) -> None:
        name = self._model_name(curs, e)
        curs.execute(
            "UPDATE registry_models SET aliases = aliases || jsonb_build_object(%s::text, %s::bigint), etag = %s,"
            " update_time = %s WHERE name = %s",
            (e.alias, e.version, str(e.originator_version), e.timestamp, name),
        )
        curs.execute(
            "INSERT INTO registry_alias_moves (position, model, alias, version, previous_version, principal, move_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (position, name, e.alias, e.version, e.previous_version, e.meta.get("principal", ""), e.timestamp),
        )

    @apply.register
    def _(self, e: Dataset.DatasetRegistered, curs: Cursor, position: int) -> None:
        curs.execute(
            "INSERT INTO registry_datasets (name, path, sha256, size_bytes, record_count, format, description,"
            " created_by, create_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (e.name, e.path, e.sha256, e.size_bytes, e.record_count, e.format, e.description,
             e.meta.get("principal", ""), e.timestamp),
        )

    @staticmethod
    def _model_name(curs: Cursor, e: Any) -> str:
        """Models are never renamed: only ModelRegistered carries the name; later events find it by id."""
        return curs.execute("SELECT name FROM registry_models WHERE id = %s", (e.originator_id,)).fetchone()["name"]

    # ----- reading --------------------------------------------------------------------------

    @staticmethod
    def _model_filters(query: str, base_model: str, tags: list[str]) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if query:
            sql, values = _contains(("name", "description", "base_model"), query)
            where.append(sql)
            params += values
        if base_model:
            where.append("base_model = %s")
            params.append(base_model)
        for tag in tags:
            key, has_value, value = tag.partition("=")
            if has_value:
                where.append("tags ->> %s = %s")
                params += [key, value]
            else:
                where.append("jsonb_exists(tags, %s)")
                params.append(key)
        return where, params

    def list_models(
        self, after: list[Any] | None, limit: int, query: str = "", base_model: str = "", tags: list[str] = (),
        order_by: str = "name",
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the models matching the filters, in `order_by` order, and how many match in all."""
        where, params = self._model_filters(query, base_model, list(tags))
        count = self._count("registry_models", where, params)
        after_sql, after_params, keys = _keyset(MODEL_ORDERS[order_by], after)
        if after_sql:
            where, params = [*where, after_sql], [*params, *after_params]
        rows = self.query(
            f"SELECT {MODEL_COLUMNS} FROM registry_models{self._where(where)} ORDER BY {keys} LIMIT %s", (*params, limit)
        )
        return rows, count

    @staticmethod
    def _where(where: list[str]) -> str:
        return " WHERE " + " AND ".join(where) if where else ""

    def _count(self, table: str, where: list[str], params: list[Any]) -> int:
        return self.query(f"SELECT count(*) AS n FROM {table}{self._where(where)}", params)[0]["n"]

    def list_versions(self, model: str, after: int, limit: int) -> list[dict[str, Any]]:
        return self.query(
            f"SELECT {VERSION_COLUMNS} FROM registry_model_versions v JOIN registry_models m ON m.name = v.model"
            " WHERE v.model = %s AND v.version > %s ORDER BY v.version LIMIT %s",
            (model, after, limit),
        )

    def list_datasets(
        self, after: list[Any] | None, limit: int, query: str = "", order_by: str = "name"
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the datasets matching `query`, in `order_by` order, and how many match in all."""
        where: list[str] = []
        params: list[Any] = []
        if query:
            sql, params = _contains(("name", "description", "path"), query)
            where.append(sql)
        count = self._count("registry_datasets", where, params)
        after_sql, after_params, keys = _keyset(DATASET_ORDERS[order_by], after)
        if after_sql:
            where, params = [*where, after_sql], [*params, *after_params]
        rows = self.query(
            f"SELECT {DATASET_COLUMNS} FROM registry_datasets{self._where(where)} ORDER BY {keys} LIMIT %s", (*params, limit)
        )
        return rows, count

    def list_dataset_versions(self, dataset: str, after: list[Any] | None, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Versions whose lineage names `dataset`, newest first (then by model and version, descending)."""
        count = self._count("registry_model_versions", ["lineage->>'dataset' = %s"], [dataset])
        where, params = "v.lineage->>'dataset' = %s", [dataset]
        if after is not None:
            where += " AND (v.create_time, v.model, v.version) < (%s::timestamptz, %s, %s)"
            params += list(after)
        rows = self.query(
            f"SELECT {VERSION_COLUMNS} FROM registry_model_versions v JOIN registry_models m ON m.name = v.model"
            f" WHERE {where} ORDER BY v.create_time DESC, v.model DESC, v.version DESC LIMIT %s",
            (*params, limit),
        )
        return rows, count

    def stats(self) -> dict[str, int]:
        return self.query(
            "SELECT (SELECT count(*) FROM registry_models) AS model_count,"
            " (SELECT count(*) FROM registry_model_versions) AS version_count,"
            " (SELECT count(*) FROM registry_datasets) AS dataset_count,"
            " (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(aliases))), 0)::bigint FROM registry_models)"
            " AS alias_count"
        )[0]

    def alias_moves(self, model: str, alias: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT position, version, previous_version, principal, move_time FROM registry_alias_moves"
            " WHERE model = %s AND alias = %s ORDER BY position",
            (model, alias),
        )

    def alias_at(self, model: str, alias: str, when: datetime) -> int:
        rows = self.query(
            "SELECT version FROM registry_alias_moves WHERE model = %s AND alias = %s AND move_time <= %s"
            " ORDER BY position DESC LIMIT 1",
            (model, alias, when),
        )
        return rows[0]["version"] if rows else 0

    # ----- rebuilding -----------------------------------------------------------------------

    def drop(self, application_name: str) -> None:
        """Forget every row and the tracked position, so the next run rebuilds from the log."""
        with self.datastore.transaction(commit=True) as curs:
            for table in TABLES:
                curs.execute(SQL("TRUNCATE {}.{}").format(self.schema, Identifier(table)))
            curs.execute(
                SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
                    self.schema, Identifier(self.tracking_table_name)
                ),
                (application_name,),
            )


class RegistryProjection(Projection[RegistryReadModel]):
    name = "registry_read_model"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process([(domain_event, tracking)])


def rebuild(app, view: RegistryReadModel, batch_size: int = 500) -> int:
    """Drop the read model and replay the whole log into it, a batch per transaction.

    Run it while no projection runner follows the same tables (the registry is
    stopped); the runner resumes from the rebuilt position when it starts.
    """
    view.drop(app.name)
    position = count = 0
    while notifications := app.recorder.select_notifications(position, batch_size, inclusive_of_start=False):
        view.process([(app.mapper.to_domain_event(n), Tracking(app.name, n.id)) for n in notifications])
        position = notifications[-1].id
        count += len(notifications)
    return count
