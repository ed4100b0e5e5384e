"""CLI command groups that live beside `mlxhub.cli`, each registered there in one line."""
