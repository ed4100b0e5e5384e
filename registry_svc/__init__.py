"""Registry service: models, model versions, datasets and aliases, event-sourced,
with lineage queries and audit replay."""
