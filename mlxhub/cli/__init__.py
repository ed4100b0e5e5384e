"""`mlx-hub`: the command line for the hub, assembled here from one module per command group.
Commands reach the services through `rpc` and print through `output` (a Rich table, or canonical
protobuf JSON with --json); the order below is the order `--help` lists them in."""

from __future__ import annotations

import typer

from mlxhub.cli import (
    aliases,
    datasets,
    events,
    generate,
    importing,
    lineage,
    models,
    registry,
    stack,
    training,
    versions,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="MLX Hub: register, fine-tune, serve and audit LLMs.")
app.command()(stack.up)
app.command()(registry.whoami)
app.command()(registry.stats)
app.command()(events.events)
app.command()(training.train)
app.command()(generate.generate)
app.command()(generate.chat)
app.command()(stack.status)

models_app = typer.Typer(no_args_is_help=True, help="Models, versions, aliases and lineage.")
models_app.command("create")(models.models_create)
models_app.command("list")(models.models_list)
models_app.command("show")(models.models_show)
models_app.command("update")(models.models_update)
models_app.command("versions")(versions.models_versions)
models_app.command("register-version")(versions.models_register_version)
models_app.command("alias")(aliases.models_alias)
models_app.command("alias-history")(aliases.models_alias_history)
models_app.command("lineage")(lineage.models_lineage)
models_app.command("resolve")(lineage.models_resolve)
models_app.command("import")(importing.models_import)

app.add_typer(models_app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(training.jobs_app, name="jobs")
