"""What the dashboard reads from the registry: who the caller is, dataset previews,
filtered and sorted lists with totals, versions trained on a dataset, overview
counts, and the event log by principal and time. Real PostgreSQL and NATS."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from google.protobuf import json_format, timestamp_pb2
from test_registry import error_of, events, field_violations

from gateway.server import running
from mlxhub.v1 import common_pb2, registry_pb2_grpc
from mlxhub.v1 import registry_pb2 as pb
from registry_svc.server import RegistryServer


def stamp(when: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value


def all_pages(call, request) -> list:
    field = "models" if isinstance(request, pb.ListModelsRequest) else "datasets"
    names, token = [], ""
    while True:
        request.page_token = token
        response = call(request)
        names += [m.name for m in getattr(response, field)]
        token = response.next_page_token
        if not token:
            return names


# ----- WhoAmI -----------------------------------------------------------------------------


def test_whoami_without_keys_is_anonymous(registry_stub):
    me = registry_stub.WhoAmI(pb.WhoAmIRequest())
    assert (me.principal, me.auth_enabled) == ("anonymous", False)


def test_whoami_names_the_keys_principal_and_refuses_a_bad_key(hub_env):
    from mlxhub.config import load_settings

    server = RegistryServer(load_settings({**hub_env, "MLXHUB_API_KEYS": "alice=k1,bob=k2"})).start()
    try:
        stub = registry_pb2_grpc.RegistryServiceStub(grpc.insecure_channel(server.address))
        me = stub.WhoAmI(pb.WhoAmIRequest(), metadata=[("authorization", "Bearer k2")])
        assert (me.principal, me.auth_enabled) == ("bob", True)
        for metadata in ([], [("authorization", "Bearer wrong")]):
            error = error_of(stub.WhoAmI, pb.WhoAmIRequest(), metadata=metadata)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in error.details()
    finally:
        server.stop(grace=1)


# ----- PreviewDataset ---------------------------------------------------------------------


def test_preview_returns_the_first_records_parsed(registry_stub, chat_dataset):
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    one = registry_stub.PreviewDataset(pb.PreviewDatasetRequest(name="chat", limit=1))
    assert len(one.records) == 1 and one.truncated
    assert json_format.MessageToDict(one.records[0])["messages"][1] == {"role": "assistant", "content": "4"}
    assert (one.record_count, one.format) == (2, pb.DATASET_FORMAT_CHAT)
    both = registry_stub.PreviewDataset(pb.PreviewDatasetRequest(name="chat"))
    assert len(both.records) == 2 and not both.truncated
    assert json_format.MessageToDict(both.records[1])["messages"][0]["content"] == "Capital of France?"


def test_preview_cuts_long_strings_long_records_and_shows_bad_lines(registry_stub, hub_home):
    path = hub_home / "datasets" / "t.jsonl"
    path.write_text('{"text": "short"}\n')
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="t", path="t.jsonl"))
    # The file changed after registration: the preview shows what it holds now, bounded.
    path.write_text(
        json.dumps({"text": "x" * 5000}) + "\n"
        + "not json at all\n"
        + json.dumps({"text": "y" * 70000}) + "\n"
        + "[1, 2]\n"
        + '{"a": ' * 40 + "1" + "}" * 40 + "\n"  # too deep for a Struct
        + "[" * 30000 + "]" * 30000 + "\n"  # too deep for the JSON parser
        + '{"n": NaN}\n'
        + json.dumps({"text": "last"}) + "\n"
    )
    got = registry_stub.PreviewDataset(pb.PreviewDatasetRequest(name="t", limit=100))
    records = [json_format.MessageToDict(r) for r in got.records]
    assert got.truncated
    assert records[0] == {"text": "x" * 4096}
    assert records[1] == {"_unparsed": "not json at all"}
    assert records[2]["_unparsed"].startswith('{"text": "yyy') and len(records[2]["_unparsed"]) == 4096
    assert records[3] == {"_unparsed": "[1, 2]"}
    assert records[4] == {"_unparsed": '{"a": ' * 40 + "1" + "}" * 40}
    assert records[5] == {"_unparsed": "[" * 4096}
    assert records[6] == {"_unparsed": '{"n": NaN}'}
    assert records[7] == {"text": "last"}
    assert len(records) == 8


def test_preview_reads_at_most_about_a_mebibyte(registry_stub, hub_home):
    path = hub_home / "datasets" / "big.jsonl"
    line = json.dumps({"text": "z" * 3000}) + "\n"
    path.write_text(line * 1000)  # ~3 MB
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="big", path="big.jsonl"))
    got = registry_stub.PreviewDataset(pb.PreviewDatasetRequest(name="big", limit=100))
    assert len(got.records) == 100 and got.truncated and got.record_count == 1000
    huge = hub_home / "datasets" / "huge.jsonl"
    huge.write_text(line)
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="huge", path="huge.jsonl"))
    huge.write_text((json.dumps({"text": "q" * 60000}) + "\n") * 40)  # 2.4 MB in 40 records
    capped = registry_stub.PreviewDataset(pb.PreviewDatasetRequest(name="huge", limit=40))
    assert capped.truncated and 15 <= len(capped.records) < 40  # stopped near 1 MiB


def test_preview_errors(registry_stub, hub_home, tmp_path, chat_dataset):
    missing = error_of(registry_stub.PreviewDataset, pb.PreviewDatasetRequest(name="nope"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND and "nope" in missing.details()
    too_many = error_of(registry_stub.PreviewDataset, pb.PreviewDatasetRequest(name="chat", limit=101))
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in field_violations(too_many)
    negative = error_of(registry_stub.PreviewDataset, pb.PreviewDatasetRequest(name="chat", limit=-1))
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    chat_dataset.unlink()
    gone = error_of(registry_stub.PreviewDataset, pb.PreviewDatasetRequest(name="chat"))
    assert gone.code() == grpc.StatusCode.FAILED_PRECONDITION and str(chat_dataset) in gone.details()
    # Replaced by a symlink that leaves the data roots: refused like at registration.
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"text": "secret"}\n')
    chat_dataset.symlink_to(outside)
    escaped = error_of(registry_stub.PreviewDataset, pb.PreviewDatasetRequest(name="chat"))
    assert escaped.code() == grpc.StatusCode.FAILED_PRECONDITION and "outside the data roots" in escaped.details()
    assert "secret" not in escaped.details()


# ----- list filters, order, totals --------------------------------------------------------


@pytest.fixture
def models(registry_stub):
    specs = [
        ("alpha", "smollm2", "Chat helper", {"team": "nlp", "stage": "prod"}),
        ("beta", "llama", "a SUMMARY model", {"team": "nlp"}),
        ("gamma", "smollm2", "vision", {"team": "cv"}),
        ("delta", "smollm2", "100%_sure", {"stage": "dev"}),
        ("epsilon", "qwen", "", {}),
    ]
    for name, base, description, tags in specs:
        registry_stub.CreateModel(pb.CreateModelRequest(name=name, base_model=base, description=description, tags=tags))
        time.sleep(0.002)  # distinct create times
    # alpha changes last: newest update_time
    registry_stub.UpdateModel(pb.UpdateModelRequest(name="alpha", model=pb.Model(description="Chat helper v2")))
    return [s[0] for s in specs]


def test_list_models_filters_and_counts(registry_stub, models):
    def names(**kwargs):
        response = registry_stub.ListModels(pb.ListModelsRequest(**kwargs))
        return [m.name for m in response.models], response.total_size

    assert names() == (sorted(models), 5)
    assert names(query="SMOLL") == (["alpha", "delta", "gamma"], 3)  # base_model, any case
    assert names(query="summary") == (["beta"], 1)  # description
    assert names(query="lph") == (["alpha"], 1)  # name
    assert names(query="%_") == (["delta"], 1)  # LIKE wildcards are plain text
    assert names(base_model="smollm2") == (["alpha", "delta", "gamma"], 3)
    assert names(base_model="smoll") == ([], 0)  # exact
    assert names(tags=["team"]) == (["alpha", "beta", "gamma"], 3)
    assert names(tags=["team=nlp"]) == (["alpha", "beta"], 2)
    assert names(tags=["team=nlp", "stage"]) == (["alpha"], 1)
    assert names(tags=["team=nlp", "stage=dev"]) == ([], 0)
    assert names(base_model="smollm2", tags=["team"], page_size=1) == (["alpha"], 2)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("name", ["alpha", "beta", "delta", "epsilon", "gamma"]),
        ("name desc", ["gamma", "epsilon", "delta", "beta", "alpha"]),
        ("create_time", ["alpha", "beta", "gamma", "delta", "epsilon"]),
        ("create_time desc", ["epsilon", "delta", "gamma", "beta", "alpha"]),
        ("update_time", ["beta", "gamma", "delta", "epsilon", "alpha"]),
        ("update_time desc", ["alpha", "epsilon", "delta", "gamma", "beta"]),
    ],
)
def test_list_models_pages_in_every_order(registry_stub, models, order_by, expected):
    for size in (1, 2, 5):
        assert all_pages(registry_stub.ListModels, pb.ListModelsRequest(page_size=size, order_by=order_by)) == expected


def test_list_models_pages_with_filters(registry_stub, models):
    got = all_pages(registry_stub.ListModels, pb.ListModelsRequest(page_size=1, query="smollm2", order_by="create_time desc"))
    assert got == ["delta", "gamma", "alpha"]


def test_list_models_bad_input(registry_stub, models):
    bad_order = error_of(registry_stub.ListModels, pb.ListModelsRequest(order_by="size"))
    assert bad_order.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order_by" in field_violations(bad_order) and "create_time desc" in bad_order.details()
    no_key = error_of(registry_stub.ListModels, pb.ListModelsRequest(tags=["=nlp"]))
    assert no_key.code() == grpc.StatusCode.INVALID_ARGUMENT and "key" in no_key.details()
    first = registry_stub.ListModels(pb.ListModelsRequest(page_size=1, order_by="create_time"))
    other = error_of(registry_stub.ListModels, pb.ListModelsRequest(page_size=1, order_by="name", page_token=first.next_page_token))
    assert other.code() == grpc.StatusCode.INVALID_ARGUMENT and "other filters" in other.details()
    filtered = error_of(registry_stub.ListModels, pb.ListModelsRequest(
        page_size=1, order_by="create_time", query="a", page_token=first.next_page_token))
    assert filtered.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(filtered)
    forged = base64.urlsafe_b64encode(json.dumps(
        {"after": ["not a time", "x"], "q": json.loads(base64.urlsafe_b64decode(first.next_page_token))["q"]}).encode()).decode()
    tampered = error_of(registry_stub.ListModels, pb.ListModelsRequest(order_by="create_time", page_token=forged))
    assert tampered.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token is not valid" in tampered.details()


def test_list_datasets_query_order_and_total(registry_stub, hub_home):
    for name, description in (("chat-b", "support chats"), ("texts", "plain text"), ("chat-a", "more CHATS")):
        (hub_home / "datasets" / f"{name}.jsonl").write_text('{"text": "x"}\n')
        registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name=name, path=f"{name}.jsonl", description=description))
        time.sleep(0.002)
    response = registry_stub.ListDatasets(pb.ListDatasetsRequest(query="chat"))
    assert ([d.name for d in response.datasets], response.total_size) == (["chat-a", "chat-b"], 2)
    assert registry_stub.ListDatasets(pb.ListDatasetsRequest(query="plain")).total_size == 1
    ordered = all_pages(registry_stub.ListDatasets, pb.ListDatasetsRequest(page_size=1, order_by="create_time desc"))
    assert ordered == ["chat-a", "texts", "chat-b"]
    assert all_pages(registry_stub.ListDatasets, pb.ListDatasetsRequest(page_size=2, order_by="name desc")) == [
        "texts", "chat-b", "chat-a"]
    error = error_of(registry_stub.ListDatasets, pb.ListDatasetsRequest(order_by="update_time"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "order_by" in field_violations(error)


def test_list_dataset_versions_newest_first(registry_stub, model_dir, chat_dataset, hub_home):
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    (hub_home / "datasets" / "other.jsonl").write_text('{"text": "x"}\n')
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="other", path="other.jsonl"))
    for model in ("m", "n"):
        registry_stub.CreateModel(pb.CreateModelRequest(name=model))
    on = common_pb2.Lineage(dataset="chat")
    for model, lineage in (("m", on), ("m", None), ("n", on), ("m", on), ("n", common_pb2.Lineage(dataset="other"))):
        registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name=model, artifact_path=str(model_dir), lineage=lineage))
    response = registry_stub.ListDatasetVersions(pb.ListDatasetVersionsRequest(name="chat"))
    assert [(v.model, v.version) for v in response.versions] == [("m", 3), ("n", 1), ("m", 1)]
    assert response.total_size == 3 and not response.next_page_token
    pages, token = [], ""
    while True:
        got = registry_stub.ListDatasetVersions(pb.ListDatasetVersionsRequest(name="chat", page_size=1, page_token=token))
        pages += [(v.model, v.version) for v in got.versions]
        token = got.next_page_token
        if not token:
            break
    assert pages == [("m", 3), ("n", 1), ("m", 1)]
    unknown = error_of(registry_stub.ListDatasetVersions, pb.ListDatasetVersionsRequest(name="nope"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and "nope" in unknown.details()
    first = registry_stub.ListDatasetVersions(pb.ListDatasetVersionsRequest(name="chat", page_size=1))
    wrong = error_of(registry_stub.ListDatasetVersions, pb.ListDatasetVersionsRequest(name="other", page_token=first.next_page_token))
    assert wrong.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(wrong)


# ----- stats ------------------------------------------------------------------------------


def test_registry_stats_count_everything(registry_stub, model_dir, chat_dataset):
    empty = registry_stub.GetRegistryStats(pb.GetRegistryStatsRequest())
    assert (empty.model_count, empty.version_count, empty.dataset_count, empty.alias_count, empty.last_event_position) == (0, 0, 0, 0, 0)
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    for model in ("m", "n"):
        registry_stub.CreateModel(pb.CreateModelRequest(name=model))
        registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name=model, artifact_path=str(model_dir)))
    registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir)))
    registry_stub.SetAlias(pb.SetAliasRequest(name="m", alias="prod", version=1))
    registry_stub.SetAlias(pb.SetAliasRequest(name="m", alias="prod", version=2))
    registry_stub.SetAlias(pb.SetAliasRequest(name="m", alias="canary", version=2))
    registry_stub.SetAlias(pb.SetAliasRequest(name="n", alias="prod", version=1))
    stats = registry_stub.GetRegistryStats(pb.GetRegistryStatsRequest())
    assert (stats.model_count, stats.version_count, stats.dataset_count, stats.alias_count) == (2, 3, 1, 3)
    log = events(registry_stub)
    assert stats.last_event_position == log[-1].position
    newest = events(registry_stub, after_position=stats.last_event_position - 2)
    assert [e.position for e in newest] == [e.position for e in log[-2:]]


# ----- ReadEvents by principal and time --------------------------------------------------


def test_read_events_by_principal(hub_env):
    from mlxhub.config import load_settings

    server = RegistryServer(load_settings({**hub_env, "MLXHUB_API_KEYS": "alice=k1,bob=k2"})).start()
    try:
        stub = registry_pb2_grpc.RegistryServiceStub(grpc.insecure_channel(server.address))
        alice, bob = [("authorization", "Bearer k1")], [("authorization", "Bearer k2")]
        stub.CreateModel(pb.CreateModelRequest(name="a1"), metadata=alice)
        stub.CreateModel(pb.CreateModelRequest(name="b1"), metadata=bob)
        stub.CreateModel(pb.CreateModelRequest(name="a2"), metadata=alice)
        by = [r.event.aggregate for r in stub.ReadEvents(pb.ReadEventsRequest(principal="alice"), metadata=bob)]
        assert by == ["model/a1", "model/a2"]
        assert list(stub.ReadEvents(pb.ReadEventsRequest(principal="carol"), metadata=bob)) == []
    finally:
        server.stop(grace=1)


def test_read_events_by_time_range(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="before"))
    time.sleep(0.05)
    start = datetime.now(UTC)
    registry_stub.CreateModel(pb.CreateModelRequest(name="inside"))
    time.sleep(0.05)
    end = datetime.now(UTC)
    registry_stub.CreateModel(pb.CreateModelRequest(name="after"))
    log = events(registry_stub)
    inside = datetime.fromisoformat(json_format.MessageToDict(log[1])["time"])
    assert [e.aggregate for e in events(registry_stub, start_time=stamp(start), end_time=stamp(end))] == ["model/inside"]
    assert [e.aggregate for e in events(registry_stub, start_time=stamp(start))] == ["model/inside", "model/after"]
    assert [e.aggregate for e in events(registry_stub, end_time=stamp(end))] == ["model/before", "model/inside"]
    # inclusive start, exclusive end
    assert [e.aggregate for e in events(registry_stub, start_time=stamp(inside), end_time=stamp(end))] == ["model/inside"]
    assert [e.aggregate for e in events(registry_stub, start_time=stamp(start), end_time=stamp(inside))] == []
    for start_at, end_at in ((end, start), (start, start)):
        error = error_of(registry_stub.ReadEvents, pb.ReadEventsRequest(start_time=stamp(start_at), end_time=stamp(end_at)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "start_time" in field_violations(error)
        assert "before end_time" in error.details()


def test_following_with_a_principal_filter_sends_only_matching_live_events(registry_stub):
    stream = registry_stub.ReadEvents(pb.ReadEventsRequest(follow=True, principal="anonymous", limit=1,
                                                           start_time=stamp(datetime.now(UTC) - timedelta(seconds=1))))
    registry_stub.CreateModel(pb.CreateModelRequest(name="live"))
    got = [r.event.aggregate for r in stream]
    assert got == ["model/live"]


# ----- through the gateway ----------------------------------------------------------------


@pytest.fixture
def client(registry, settings):
    with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield http


def test_new_routes_through_the_gateway(client, chat_dataset):
    me = client.get("/v1/whoami")
    assert me.status_code == 200 and me.json() == {"principal": "anonymous"}  # authEnabled false: left out, as JSON does
    assert client.post("/v1/datasets", json={"name": "chat", "path": str(chat_dataset)}).status_code == 200
    preview = client.get("/v1/datasets/chat:preview", params={"limit": 1})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["truncated"] is True and body["recordCount"] == "2" and body["format"] == "DATASET_FORMAT_CHAT"
    assert body["records"][0]["messages"][0]["content"] == "What is 2+2?"
    missing = client.get("/v1/datasets/nope:preview")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    for name, tags in (("a", {"team": "nlp"}), ("b", {"team": "cv"}), ("c", {"team": "nlp"})):
        assert client.post("/v1/models", json={"name": name, "baseModel": "smollm2", "tags": tags}).status_code == 200
    listed = client.get("/v1/models?query=SMOL&orderBy=create_time%20desc&tags=team=nlp&pageSize=1")
    assert listed.status_code == 200, listed.text
    page1 = listed.json()
    assert [m["name"] for m in page1["models"]] == ["c"] and page1["totalSize"] == 2
    page2 = client.get("/v1/models", params={"query": "SMOL", "orderBy": "create_time desc", "tags": "team=nlp",
                                             "pageSize": 1, "pageToken": page1["nextPageToken"]}).json()
    assert [m["name"] for m in page2["models"]] == ["a"]
    bad = client.get("/v1/models", params={"orderBy": "size"})
    assert bad.status_code == 400 and "create_time desc" in bad.json()["message"]
    stats = client.get("/v1/registry/stats").json()
    assert (stats["modelCount"], stats["datasetCount"]) == ("3", "1") and int(stats["lastEventPosition"]) > 0
    versions = client.get("/v1/datasets/chat/versions").json()
    assert versions.get("versions", []) == [] and versions.get("totalSize", 0) == 0
    log = client.get("/v1/events", params={"principal": "anonymous"})
    assert log.status_code == 200
    lines = [json.loads(line) for line in log.text.split("\n") if line]
    assert [line["result"]["event"]["aggregate"] for line in lines] == ["dataset/chat", "model/a", "model/b", "model/c"]
    assert client.get("/v1/events", params={"principal": "nobody"}).text.strip() == ""


# ----- training jobs: total_size ---------------------------------------------------------


@pytest.mark.parametrize("trainer_workers", [0])  # no worker: jobs stay queued until cancelled
def test_list_training_jobs_counts_every_match(trainer_stub, registry_stub, tiny_model, training_chats, trainer_workers):
    from trainer_util import create, register

    from mlxhub.v1 import trainer_pb2 as T

    register(registry_stub, tiny_model, training_chats)
    register(registry_stub, tiny_model, training_chats, model="other", dataset_name="chats2")
    jobs = [create(trainer_stub), create(trainer_stub), create(trainer_stub), create(trainer_stub, model="other", dataset="chats2")]
    trainer_stub.CancelTrainingJob(T.CancelTrainingJobRequest(id=jobs[0].id))

    def listed(**kwargs):
        response = trainer_stub.ListTrainingJobs(T.ListTrainingJobsRequest(**kwargs))
        return len(response.jobs), response.total_size

    assert listed() == (4, 4)
    assert listed(page_size=1) == (1, 4)
    assert listed(model="tiny") == (3, 3)
    assert listed(state=T.TRAINING_JOB_STATE_QUEUED) == (3, 3)
    assert listed(state=T.TRAINING_JOB_STATE_CANCELLED, model="tiny") == (1, 1)
    assert listed(state=T.TRAINING_JOB_STATE_SUCCEEDED) == (0, 0)


def test_following_a_range_that_ended_long_ago_ends_the_stream(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="old"))
    later = datetime.now(UTC) + timedelta(seconds=1)
    # The range is long over (end_time more than the slack ago): the stream sends what matches and ends.
    stream = registry_stub.ReadEvents(pb.ReadEventsRequest(
        follow=True, start_time=stamp(later - timedelta(hours=2)), end_time=stamp(later - timedelta(minutes=61))), timeout=10)
    assert list(stream) == []
    live = registry_stub.ReadEvents(pb.ReadEventsRequest(follow=True, end_time=stamp(later + timedelta(hours=1))), timeout=10)
    assert next(live).event.aggregate == "model/old"  # a range still open keeps following
    live.cancel()


# ----- the CLI commands over the same RPCs ------------------------------------------------


def test_cli_whoami_stats_preview_and_filters(registry, hub_env, chat_dataset, model_dir):
    from typer.testing import CliRunner

    from mlxhub.cli import app

    env = {**hub_env, "COLUMNS": "250", "MLXHUB_API_KEY": ""}

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args), env=env, prog_name="mlx-hub")
        assert result.exit_code == code, f"{result.stdout}\n{result.stderr}"
        return result.stdout if code == 0 else result.stderr

    assert "anonymous (the hub has no API keys)" in run("whoami")
    run("datasets", "register", "chat", str(chat_dataset))
    lines = run("datasets", "preview", "chat", "--limit", "1").strip().splitlines()
    assert [json.loads(line)["messages"][1]["content"] for line in lines] == ["4"]
    run("models", "create", "nlp-model", "--base-model", "smollm2", "--tag", "team=nlp")
    run("models", "create", "cv-model", "--base-model", "smollm2", "--tag", "team=cv")
    listed = json.loads(run("models", "list", "--tag", "team=nlp", "--json"))
    assert [m["name"] for m in listed["models"]] == ["nlp-model"] and listed["totalSize"] == 1
    ordered = json.loads(run("models", "list", "--order-by", "create_time desc", "--json"))
    assert [m["name"] for m in ordered["models"]] == ["cv-model", "nlp-model"]
    assert "order_by" in run("models", "list", "--order-by", "size", code=1)
    lineage = common_pb2.Lineage(dataset="chat")
    with grpc.insecure_channel(registry.address) as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).CreateModelVersion(
            pb.CreateModelVersionRequest(name="nlp-model", artifact_path=str(model_dir), lineage=lineage))
    assert "nlp-model/versions/1" in run("datasets", "versions", "chat")
    stats = json.loads(run("stats", "--json"))
    assert (stats["modelCount"], stats["versionCount"], stats["datasetCount"]) == ("2", "1", "1")
    assert json.loads(run("events", "--json", "--principal", "anonymous", "--limit", "1").strip())["type"] == "DatasetRegistered"
    assert "no events" in run("events", "--principal", "nobody")
    assert "no events" in run("events", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z")
    assert "ISO time" in run("events", "--since", "yesterday", code=2)
