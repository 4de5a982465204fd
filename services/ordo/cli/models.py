"""`ordo models list` and `ordo models activate MODEL`: model versions over the ingest service.

Each model (and fine-tuned version) has its own collection; activating one re-embeds every stored
original with it in the background (a normal job, shown with a progress bar) while search keeps serving
the current model, then flips."""

from __future__ import annotations

import json

import click
from google.protobuf.json_format import MessageToDict
from rich.table import Table

from ordo.cli.common import make_client, out, print_summary, rpc, watch_job


def _state(value: int) -> str:
    from ordo.v1 import ingest_pb2

    return ingest_pb2.ModelVersionState.Name(value).removeprefix("MODEL_VERSION_STATE_").lower()


@click.group()
def models() -> None:
    """List model versions and switch the active one (background re-embed, then an alias flip)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_models(as_json: bool) -> None:
    """Model versions: which serves, which is being built, how many vectors each holds."""
    from ordo.v1 import ingest_pb2

    client = make_client()
    response = rpc(
        lambda: client.ingest.ListModelVersions(ingest_pb2.ListModelVersionsRequest()),
        "ListModelVersions",
        client.settings,
    )
    if as_json:
        out.print_json(json.dumps([MessageToDict(v) for v in response.versions]))
        return
    table = Table("model", "model id", "state", "vectors", "collection", "job", "why")
    for v in response.versions:
        table.add_row(
            v.model, v.model_id, _state(v.state), str(v.vector_count), v.collection, v.job_id, v.error or v.reason
        )
    out.print(table)


@models.command()
@click.argument("model")
@click.option("--no-wait", is_flag=True, help="Return once the re-embedding job is queued.")
def activate(model: str, no_wait: bool) -> None:
    """Make MODEL the active model: re-embed every image with it in the background, then switch.

    MODEL is a Hugging Face id, a local model directory (e.g. one written by `ordo finetune`),
    `ordo-lite`, or `auto`. Search keeps answering with the current model until the switch completes."""
    from ordo.v1 import ingest_pb2

    client = make_client()
    response = rpc(
        lambda: client.ingest.ActivateModel(ingest_pb2.ActivateModelRequest(model=model)),
        "ActivateModel",
        client.settings,
    )
    version = response.version
    out.print(
        f"building {version.model} ({version.model_id}) into collection {version.collection}; job {response.job.job_id}"
    )
    job = watch_job(client, response.job.job_id, no_wait)
    print_summary([job], [], as_json=False)
    if not no_wait:
        stats = rpc(lambda: client.ingest.GetStats(ingest_pb2.GetStatsRequest()), "GetStats", client.settings)
        out.print(f"active model: {stats.model} ({stats.model_id}), collection {stats.collection}")


COMMANDS: list[click.Command] = [models]
