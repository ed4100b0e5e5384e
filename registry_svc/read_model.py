"""Read models for lists, alias history and lookups: PostgreSQL tables kept by a
projection of the registry's event log.

Rows and the tracking position are written in the same transaction (the
library's `PostgresTrackingRecorder` row), so a crash never applies an event
twice or skips one. The tables can be dropped and rebuilt from the log at any
time (`mlxhub.read_model.rebuild`). The live projection applies a batch of events with one
set-based statement per table (`apply_batch`); a rebuild has PostgreSQL fold the whole log from
the stored events' JSON in one statement (`fold_log`), writing the same rows, and falls back to
`apply_batch` for a log it cannot read that way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.sql import SQL, Composable, Identifier

from mlxhub.lru import LruMap
from mlxhub.read_model import ReadModel, stored_events
from registry_svc.domain import UPDATABLE_MODEL_FIELDS, Dataset, Model

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


# Model names the read model keeps by id: the models being written now, not every one it has seen
# (~250 bytes each); a batch's names not kept are one indexed SELECT (`_names_of`).
NAME_CACHE_SIZE = 4096
MODEL_FIELDS = frozenset(UPDATABLE_MODEL_FIELDS)  # what a ModelUpdated may change


class _Changes:
    """One batch's changes to the read model, folded per row in log order (last write wins per
    field, versions and alias moves appended), written by `write` with one statement per table."""

    def __init__(self, names: dict[UUID, str]) -> None:
        self.names = names
        self.new_models: dict[str, dict[str, Any]] = {}  # rows to insert, with the batch's later changes
        self.model_changes: dict[str, dict[str, Any]] = {}  # changes to rows from earlier batches
        self.versions: list[tuple] = []
        self.alias_moves: list[tuple] = []
        self.datasets: list[tuple] = []

    def model_name(self, e: Any) -> str:
        try:
            return self.names[e.originator_id]
        except KeyError:
            raise LookupError(f"no model with id {e.originator_id} in the read model for {type(e).__name__}") from None

    def model_row(self, e: Any) -> tuple[str, dict[str, Any]]:
        """The name of the event's model and its row change, stamped with the event's version and time."""
        name = self.model_name(e)
        row = self.new_models.get(name)
        if row is None:
            row = self.model_changes.setdefault(name, {"latest_version": 0, "aliases": {}})
        row["etag"], row["update_time"] = str(e.originator_version), e.timestamp
        return name, row

    def registered(self, e: Any, position: int) -> None:
        if e.name in self.new_models:
            raise ValueError(f"model {e.name!r} registered twice in one batch")
        self.new_models[e.name] = {
            "id": e.originator_id, "base_model": e.base_model, "description": e.description, "tags": e.tags,
            "latest_version": 0, "aliases": {}, "etag": str(e.originator_version),
            "created_by": e.meta.get("principal", ""), "create_time": e.timestamp, "update_time": e.timestamp,
        }  # fmt: skip

    def updated(self, e: Any, position: int) -> None:
        unknown = e.changes.keys() - MODEL_FIELDS
        if unknown:
            raise ValueError(f"ModelUpdated changes unknown fields {sorted(unknown)}")
        self.model_row(e)[1].update(e.changes)

    def version_created(self, e: Any, position: int) -> None:
        name, row = self.model_row(e)
        row["latest_version"] = max(row["latest_version"], e.version)
        self.versions.append((
            name, e.version, e.artifact_path, e.kind, e.files, e.metrics,
            e.description, e.base_version, e.lineage, e.meta.get("principal", ""), e.create_time,
        ))  # fmt: skip

    def alias_moved(self, e: Any, position: int) -> None:
        name, row = self.model_row(e)
        row["aliases"][e.alias] = e.version
        self.alias_moves.append(
            (position, name, e.alias, e.version, e.previous_version, e.meta.get("principal", ""),
             e.timestamp)
        )

    def dataset_registered(self, e: Any, position: int) -> None:
        self.datasets.append((e.name, e.path, e.sha256, e.size_bytes, e.record_count, e.format, e.description,
                              e.meta.get("principal", ""), e.timestamp))  # fmt: skip

    def write(self, curs: Cursor) -> None:
        if self.new_models:
            curs.execute(*_from_rows(
                "INSERT INTO registry_models (name, id, base_model, description, tags, latest_version, aliases, etag,"
                " created_by, create_time, update_time) SELECT name, id, base_model, description, tags,"
                " latest_version, aliases, etag, created_by, create_time, update_time FROM {rows}",
                MODEL_ROW, [
                    (name, r["id"], r["base_model"], r["description"], r["tags"], r["latest_version"],
                     r["aliases"], r["etag"], r["created_by"], r["create_time"], r["update_time"])
                    for name, r in self.new_models.items()
                ],
            ))  # fmt: skip
        if self.model_changes:
            curs.execute(*_from_rows(  # the count as a row: a pipelined transaction has no rowcount until it syncs
                "WITH changed AS (UPDATE registry_models AS m SET base_model = coalesce(u.base_model, m.base_model),"
                " description = coalesce(u.description, m.description), tags = coalesce(u.tags, m.tags),"
                " latest_version = GREATEST(m.latest_version, u.latest_version),"
                " aliases = m.aliases || u.aliases, etag = u.etag, update_time = u.update_time"
                " FROM {rows} WHERE m.name = u.name RETURNING 1) SELECT count(*) AS changed FROM changed",
                MODEL_CHANGE, [
                    (name, r.get("base_model"), r.get("description"), r.get("tags"),
                     r["latest_version"], r["aliases"], r["etag"], r["update_time"])
                    for name, r in self.model_changes.items()
                ],
            ))  # fmt: skip
            changed = curs.fetchone()["changed"]
            if changed != len(self.model_changes):
                raise LookupError(f"{len(self.model_changes) - changed} changed models are not in the read model")
        if self.versions:
            curs.execute(*_from_rows(
                "INSERT INTO registry_model_versions (model, version, artifact_path, kind, files, metrics, description,"
                " base_version, lineage, status, created_by, create_time) SELECT model, version, artifact_path, kind,"
                " files, metrics, description, base_version, lineage, 'READY', created_by,"
                " create_time FROM {rows}",
                VERSION_ROW, self.versions,
            ))  # fmt: skip
        if self.alias_moves:
            curs.execute(*_from_rows(
                "INSERT INTO registry_alias_moves (position, model, alias, version, previous_version, principal,"
                " move_time) SELECT * FROM {rows}", ALIAS_MOVE_ROW, self.alias_moves,
            ))  # fmt: skip
        if self.datasets:
            curs.execute(*_from_rows(
                "INSERT INTO registry_datasets (name, path, sha256, size_bytes, record_count, format, description,"
                " created_by, create_time) SELECT * FROM {rows}", DATASET_ROW, self.datasets,
            ))  # fmt: skip


# The rows a batch writes to each table: (column, PostgreSQL type) in the order of the row tuples.
MODEL_ROW = (
    ("name", "text"), ("id", "uuid"), ("base_model", "text"), ("description", "text"), ("tags", "jsonb"),
    ("latest_version", "bigint"), ("aliases", "jsonb"), ("etag", "text"), ("created_by", "text"),
    ("create_time", "timestamptz"), ("update_time", "timestamptz"),
)  # fmt: skip
MODEL_CHANGE = (  # NULL: unchanged ("jsonb?": a JSON null is NULL)
    ("name", "text"), ("base_model", "text"), ("description", "text"), ("tags", "jsonb?"), ("latest_version", "bigint"),
    ("aliases", "jsonb"), ("etag", "text"), ("update_time", "timestamptz"),
)  # fmt: skip
VERSION_ROW = (
    ("model", "text"), ("version", "bigint"), ("artifact_path", "text"), ("kind", "text"), ("files", "jsonb"),
    ("metrics", "jsonb"), ("description", "text"), ("base_version", "text"), ("lineage", "jsonb"),
    ("created_by", "text"), ("create_time", "timestamptz"),
)  # fmt: skip
ALIAS_MOVE_ROW = (
    ("position", "bigint"), ("model", "text"), ("alias", "text"), ("version", "bigint"),
    ("previous_version", "bigint"), ("principal", "text"), ("move_time", "timestamptz"),
)  # fmt: skip
DATASET_ROW = (
    ("name", "text"), ("path", "text"), ("sha256", "text"), ("size_bytes", "bigint"), ("record_count", "bigint"),
    ("format", "text"), ("description", "text"), ("created_by", "text"), ("create_time", "timestamptz"),
)  # fmt: skip


def _from_rows(statement: str, shape: tuple[tuple[str, str], ...], rows: list[tuple]) -> tuple[str, list[Any]]:
    """`statement` reading `rows` as the relation `u` in place of {rows}: the rows travel as one JSON
    array of arrays, written in one call (`_json_rows`) and taken apart by PostgreSQL
    (psycopg would dump array parameters element by element in Python, which cost more than the rest
    of applying a batch). The statement's text does not depend on the number of rows, so it is
    prepared once per connection."""
    columns = ", ".join(
        f"r->{i} AS {name}" if kind == "jsonb" else
        f"nullif(r->{i}, 'null') AS {name}" if kind == "jsonb?" else f"(r->>{i})::{kind} AS {name}"
        for i, (name, kind) in enumerate(shape)
    )
    relation = f"(SELECT {columns} FROM jsonb_array_elements(%s::jsonb) AS r) AS u"
    return statement.format(rows=relation), [_json_rows(rows)]


def _json_rows(rows: list[tuple]) -> str:
    """The rows as one JSON array: orjson writes times as RFC 3339 (PostgreSQL reads them back to the
    same microsecond) and ids as text; the json module writes what orjson refuses (integers beyond
    64 bits)."""
    try:
        return orjson.dumps(rows).decode()
    except TypeError:
        return json.dumps(rows, default=str)


_HANDLERS = {
    Model.ModelRegistered: _Changes.registered,
    Model.ModelUpdated: _Changes.updated,
    Model.ModelVersionCreated: _Changes.version_created,
    Model.AliasMoved: _Changes.alias_moved,
    Dataset.DatasetRegistered: _Changes.dataset_registered,
}


# The rebuild's fold in the database (`RegistryReadModel.fold_log`): the rows `_Changes` writes,
# computed by PostgreSQL from the stored events' JSON in one statement. Each event is parsed once
# (`ev`: mlxhub.read_model.stored_events, kept in memory); the times are read from the library's {"_type_": "datetime_iso",
# "_data_": ...} values. An event with any other transcoded value (counted in its text) or with a
# class version (upcasting) makes the rebuild replay in Python instead.
TOPICS = {cls: get_topic(cls) for cls in _HANDLERS}
REGISTERED, UPDATED, VERSION_CREATED, ALIAS_MOVED = (
    TOPICS[c] for c in (Model.ModelRegistered, Model.ModelUpdated, Model.ModelVersionCreated, Model.AliasMoved)
)
FOLD = (
    "WITH ev AS MATERIALIZED (SELECT position, id, version, topic, j, transcoded FROM ({events}) AS stored"
    "), registered AS MATERIALIZED (SELECT id, j->>'name' AS name, j FROM ev WHERE topic = %(registered)s),"
    " model_events AS ("
    "  SELECT id, position, version, j->'timestamp'->>'_data_' AS time,"
    "  CASE WHEN topic = %(updated)s THEN j->'changes' END AS changes,"
    "  CASE WHEN topic = %(created)s THEN (j->>'version')::bigint END AS created_version"
    "  FROM ev WHERE topic = ANY(%(model_topics)s)"
    "), folded AS ("
    "  SELECT id, max(version) AS version, max(created_version) AS latest_version,"
    "  (array_agg(time ORDER BY position DESC))[1] AS update_time,"
    "  (array_agg(changes->>'base_model' ORDER BY position DESC)"
    "    FILTER (WHERE jsonb_typeof(changes->'base_model') <> 'null'))[1] AS base_model,"
    "  (array_agg(changes->>'description' ORDER BY position DESC)"
    "    FILTER (WHERE jsonb_typeof(changes->'description') <> 'null'))[1] AS description,"
    "  (array_agg(changes->'tags' ORDER BY position DESC)"
    "    FILTER (WHERE jsonb_typeof(changes->'tags') <> 'null'))[1] AS tags"
    "  FROM model_events GROUP BY id"
    "), aliases AS ("
    "  SELECT id, jsonb_object_agg(alias, version) AS aliases FROM ("
    "    SELECT DISTINCT ON (id, j->>'alias') id, j->>'alias' AS alias, j->'version' AS version FROM ev"
    "    WHERE topic = %(moved)s ORDER BY id, j->>'alias', position DESC"
    "  ) AS latest GROUP BY id"
    "), models AS ("
    "  INSERT INTO registry_models (name, id, base_model, description, tags, latest_version, aliases, etag, created_by,"
    "  create_time, update_time)"
    "  SELECT r.name, r.id, coalesce(f.base_model, r.j->>'base_model'), coalesce(f.description, r.j->>'description'),"
    "  coalesce(f.tags, r.j->'tags'), coalesce(f.latest_version, 0), coalesce(a.aliases, '{{}}'), f.version::text,"
    "  coalesce(r.j->'meta'->>'principal', ''), (r.j->'timestamp'->>'_data_')::timestamptz, f.update_time::timestamptz"
    "  FROM registered r JOIN folded f ON f.id = r.id LEFT JOIN aliases a ON a.id = r.id RETURNING 1"
    "), versions AS ("
    "  INSERT INTO registry_model_versions (model, version, artifact_path, kind, files, metrics, description,"
    "  base_version, lineage, status, created_by, create_time)"
    "  SELECT r.name, (v.j->>'version')::bigint, v.j->>'artifact_path', v.j->>'kind', v.j->'files', v.j->'metrics',"
    "  v.j->>'description', v.j->>'base_version', v.j->'lineage', 'READY', coalesce(v.j->'meta'->>'principal', ''),"
    "  (v.j->'create_time'->>'_data_')::timestamptz"
    "  FROM ev v JOIN registered r ON r.id = v.id WHERE v.topic = %(created)s RETURNING 1"
    "), moves AS ("
    "  INSERT INTO registry_alias_moves (position, model, alias, version, previous_version, principal, move_time)"
    "  SELECT m.position, r.name, m.j->>'alias', (m.j->>'version')::bigint, (m.j->>'previous_version')::bigint,"
    "  coalesce(m.j->'meta'->>'principal', ''), (m.j->'timestamp'->>'_data_')::timestamptz"
    "  FROM ev m JOIN registered r ON r.id = m.id WHERE m.topic = %(moved)s RETURNING 1"
    "), datasets AS ("
    "  INSERT INTO registry_datasets (name, path, sha256, size_bytes, record_count, format, description, created_by,"
    "  create_time)"
    "  SELECT j->>'name', j->>'path', j->>'sha256', (j->>'size_bytes')::bigint, (j->>'record_count')::bigint,"
    "  j->>'format', j->>'description', coalesce(j->'meta'->>'principal', ''), (j->'timestamp'->>'_data_')::timestamptz"
    "  FROM ev WHERE topic = %(dataset)s RETURNING 1"
    ")"
    " SELECT (SELECT count(*) FROM ev WHERE j ? 'class_version'"
    "   OR transcoded <> 1 + (topic = %(created)s)::int OR j->'timestamp'->>'_type_' IS DISTINCT FROM 'datetime_iso'"
    "   OR (topic = %(created)s AND j->'create_time'->>'_type_' IS DISTINCT FROM 'datetime_iso')) AS declined,"
    " (SELECT array_agg(DISTINCT k) FROM ev, jsonb_object_keys(j->'changes') AS k"
    "   WHERE topic = %(updated)s AND k <> ALL(%(fields)s)) AS unknown_fields,"
    # every registered model has a row in `folded`; a row more is a model never registered
    " (SELECT count(*) FROM folded) - (SELECT count(*) FROM models) AS unregistered,"
    " (SELECT count(*) FROM versions) + (SELECT count(*) FROM moves) + (SELECT count(*) FROM datasets) AS written"
)
FOLD_PARAMS = {
    "topics": list(TOPICS.values()), "model_topics": [REGISTERED, UPDATED, VERSION_CREATED, ALIAS_MOVED],
    "registered": REGISTERED, "updated": UPDATED, "created": VERSION_CREATED, "moved": ALIAS_MOVED,
    "dataset": TOPICS[Dataset.DatasetRegistered], "fields": sorted(MODEL_FIELDS),
}  # fmt: skip


class RegistryReadModel(ReadModel):
    """Tables of the read model plus the tracking row, in one recorder."""

    tables = tuple(TABLES)

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._names: LruMap[UUID, str] = LruMap(NAME_CACHE_SIZE)  # model id -> name, learnt from applied events
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

    def apply(self, domain_event: Any, curs: Cursor, position: int) -> None:
        self.apply_batch([(domain_event, position)], curs)

    def apply_batch(self, events: Sequence[tuple[Any, int]], curs: Cursor) -> None:
        """Fold the events, in log order, into one row change per model, then write each table with
        one set-based statement: a few round trips per batch instead of two or three per event."""
        changes = _Changes(self._names_of(events, curs))
        for domain_event, position in events:
            handler = _HANDLERS.get(type(domain_event))
            if handler is not None:
                handler(changes, domain_event, position)
        changes.write(curs)
        self._learn_names(changes.names)

    def fold_log(self, curs: Cursor, events: Composable, through: int) -> bool:
        """The rebuild's fold in PostgreSQL (FOLD: one statement), checked as `apply_batch` checks
        the events: a ModelUpdated of an unknown field or an event of a model never registered
        fails the rebuild, and an event the fold cannot read declines it."""
        curs.execute("SET LOCAL work_mem = '256MB'")  # the parsed events stay in memory
        declined, unknown_fields, unregistered, _ = curs.execute(
            SQL(FOLD).format(events=stored_events(events, SQL("%(through)s"), SQL(" AND topic = ANY(%(topics)s)"))),
            {**FOLD_PARAMS, "through": through},
        ).fetchone().values()
        if unknown_fields:
            raise ValueError(f"ModelUpdated changes unknown fields {sorted(unknown_fields)}")
        if unregistered:
            raise LookupError(f"{unregistered} models have events but no ModelRegistered in the log")
        return not declined

    def _names_of(self, events: Sequence[tuple[Any, int]], curs: Cursor) -> dict[UUID, str]:
        """Model names by id for the batch's events: registrations in the batch, then the names this
        process has seen (names never change), then one query for the rest."""
        names: dict[UUID, str] = {}
        missing: set[UUID] = set()
        for domain_event, _ in events:
            originator_id = domain_event.originator_id
            if type(domain_event) is Model.ModelRegistered:
                names[originator_id] = domain_event.name
            elif isinstance(domain_event, Model.Event) and originator_id not in names:
                known = self._names.get(originator_id)
                if known is None:
                    missing.add(originator_id)
                else:
                    names[originator_id] = known
        missing.difference_update(names)
        if missing:
            rows = curs.execute("SELECT id, name FROM registry_models WHERE id = ANY(%s)", (list(missing),)).fetchall()
            names.update((row["id"], row["name"]) for row in rows)
        return names

    def _learn_names(self, names: dict[UUID, str]) -> None:
        self._names.update(names)

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


class RegistryProjection(Projection[RegistryReadModel]):
    name = "registry_read_model"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process([(domain_event, tracking)])
