"""Events seeded straight through the registry application (many aggregates per save), in the
mix a working registry records: per model a registration, updates, versions and alias moves,
plus a dataset now and then. Most events change an existing model, so a read model's apply
path (not only its inserts) is what a replay or rebuild of them measures."""

from __future__ import annotations

from datetime import UTC, datetime

from registry_svc.domain import Dataset, Model

SAVE_BATCH = 250  # events per save: one transaction each (a save of ~1 MB stalls the library's pipeline)
# One model's events: registered, then (update, update, version, alias move) x 4, then one update.
EVENTS_PER_MODEL = 18


def _model_events(model: Model, meta: dict[str, str]) -> None:
    for step in range(4):
        model.update({"description": f"step {step}"}, meta)
        model.update({"tags": {"i": model.name, "step": str(step)}}, meta)
        version = step + 1
        model.create_version(
            version=version, artifact_path=f"/models/{model.name}/{version}", kind="FULL",
            files=[{"path": "model.safetensors", "size_bytes": 1024, "sha256": "0" * 64}],
            metrics={"loss": 1.0 / version}, description="", base_version="",
            lineage={"source": "registered", "model": model.name, "version": version},
            idempotency_key="", create_time=datetime.now(UTC), meta=meta,
        )  # fmt: skip
        model.move_alias("prod", version, version - 1, meta)
    model.update({"base_model": "bench-2"}, meta)


def save_in_batches(app, count: int, make) -> int:
    """Save aggregates made by `make(i, left)` (`left`: events still wanted), SAVE_BATCH events per
    save, until `count` events are recorded; return how many were."""
    pending: list = []
    pending_events = recorded = i = 0
    while recorded + pending_events < count:
        aggregate = make(i, count - recorded - pending_events)
        pending.append(aggregate)
        pending_events += len(aggregate.pending_events)
        i += 1
        if pending_events >= SAVE_BATCH:
            app.save(*pending)
            recorded += pending_events
            pending, pending_events = [], 0
    if pending:
        app.save(*pending)
        recorded += pending_events
    return recorded


def seed(app, count: int, prefix: str = "seed") -> int:
    """Record exactly `count` events; return how many were recorded."""
    meta = {"principal": "bench", "request_id": "seed", "trace_id": ""}

    def make(i: int, left: int):
        if i % 50 == 49:
            return Dataset(name=f"{prefix}-data-{i}", path=f"/data/{i}.jsonl", sha256="0" * 64,
                           size_bytes=10, record_count=1, format="CHAT", description="",
                           idempotency_key="", meta=meta)  # fmt: skip
        model = Model(name=f"{prefix}-{i}", base_model="bench", description="", tags={"i": str(i)},
                      idempotency_key="", meta=meta)  # fmt: skip
        if left >= EVENTS_PER_MODEL:
            _model_events(model, meta)
        return model

    return save_in_batches(app, count, make)
