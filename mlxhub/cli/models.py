"""`mlx-hub models create|list|show|update`: the models themselves."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, OrderOpt, details, emit, pairs, parse_tags, when
from mlxhub.v1 import registry_pb2 as pb


def model_rows(model: pb.Model) -> Table:
    return details(
        f"model {model.name}",
        [
            ("name", model.name),
            ("base model", model.base_model),
            ("description", model.description),
            ("tags", pairs(model.tags)),
            ("latest version", model.latest_version),
            ("aliases", pairs(model.aliases)),
            ("created", f"{when(model.create_time)} by {model.created_by}"),
            ("updated", when(model.update_time)),
            ("etag", model.etag),
        ],
    )


def models_table(models) -> Table:
    table = Table(title="models")
    for column in ("name", "base model", "latest", "aliases", "description", "tags"):
        table.add_column(column, overflow="fold")
    for m in models:
        table.add_row(m.name, m.base_model, str(m.latest_version), pairs(m.aliases), m.description, pairs(m.tags))
    return table


def models_create(
    name: str,
    base_model: Annotated[str, typer.Option(help="Base model: a hub reference or e.g. a Hugging Face repo id.")] = "",
    description: str = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a new model."""
    request = pb.CreateModelRequest(name=name, base_model=base_model, description=description, tags=parse_tags(tag))
    emit(rpc.call("CreateModel", request).model, as_json, model_rows)


def models_list(
    query: Annotated[str, typer.Option(help="Only models whose name, description or base model contains this.")] = "",
    base_model: Annotated[str, typer.Option(help="Only models with exactly this base model.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY or KEY=VALUE, repeatable: only models with every one.")] = None,
    order_by: OrderOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List the models (every one, or those matching the filters)."""
    request = pb.ListModelsRequest(query=query, base_model=base_model, tags=tag or [], order_by=order_by)
    emit(rpc.call_all("ListModels", request, "models"), as_json, lambda r: models_table(r.models))


def models_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one model."""
    emit(rpc.call("GetModel", pb.GetModelRequest(name=name)).model, as_json, model_rows)


def models_update(
    name: str,
    description: Annotated[str | None, typer.Option()] = None,
    base_model: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable; replaces all tags.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a model's description, base model or tags (only the options given)."""
    model, paths = pb.Model(), []
    if description is not None:
        model.description = description
        paths.append("description")
    if base_model is not None:
        model.base_model = base_model
        paths.append("base_model")
    if tag is not None:
        model.tags.update(parse_tags(tag))
        paths.append("tags")
    if not paths:
        raise typer.BadParameter("give at least one of --description, --base-model, --tag")
    request = pb.UpdateModelRequest(name=name, model=model)
    request.update_mask.paths.extend(paths)
    emit(rpc.call("UpdateModel", request).model, as_json, model_rows)
