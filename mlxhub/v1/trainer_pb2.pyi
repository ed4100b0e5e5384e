import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mlxhub.v1 import bounds_pb2 as _bounds_pb2
from mlxhub.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_JOB_STATE_UNSPECIFIED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_QUEUED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_RUNNING: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_SUCCEEDED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_FAILED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_CANCELLED: _ClassVar[TrainingJobState]

class FineTuneType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINE_TUNE_TYPE_UNSPECIFIED: _ClassVar[FineTuneType]
    FINE_TUNE_TYPE_LORA: _ClassVar[FineTuneType]
    FINE_TUNE_TYPE_DORA: _ClassVar[FineTuneType]

class LearningRateSchedule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEARNING_RATE_SCHEDULE_UNSPECIFIED: _ClassVar[LearningRateSchedule]
    LEARNING_RATE_SCHEDULE_CONSTANT: _ClassVar[LearningRateSchedule]
    LEARNING_RATE_SCHEDULE_COSINE_DECAY: _ClassVar[LearningRateSchedule]
    LEARNING_RATE_SCHEDULE_LINEAR: _ClassVar[LearningRateSchedule]
TRAINING_JOB_STATE_UNSPECIFIED: TrainingJobState
TRAINING_JOB_STATE_QUEUED: TrainingJobState
TRAINING_JOB_STATE_RUNNING: TrainingJobState
TRAINING_JOB_STATE_SUCCEEDED: TrainingJobState
TRAINING_JOB_STATE_FAILED: TrainingJobState
TRAINING_JOB_STATE_CANCELLED: TrainingJobState
FINE_TUNE_TYPE_UNSPECIFIED: FineTuneType
FINE_TUNE_TYPE_LORA: FineTuneType
FINE_TUNE_TYPE_DORA: FineTuneType
LEARNING_RATE_SCHEDULE_UNSPECIFIED: LearningRateSchedule
LEARNING_RATE_SCHEDULE_CONSTANT: LearningRateSchedule
LEARNING_RATE_SCHEDULE_COSINE_DECAY: LearningRateSchedule
LEARNING_RATE_SCHEDULE_LINEAR: LearningRateSchedule

class TrainingConfig(_message.Message):
    __slots__ = ("fine_tune_type", "rank", "scale", "dropout", "num_layers", "learning_rate", "lr_schedule", "warmup_steps", "iters", "epochs", "batch_size", "max_seq_length", "mask_prompt", "grad_accumulation_steps", "validation_split", "validation_dataset", "steps_per_eval", "val_batches", "steps_per_report", "save_every", "seed", "grad_checkpoint")
    FINE_TUNE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    NUM_LAYERS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    ITERS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MASK_PROMPT_FIELD_NUMBER: _ClassVar[int]
    GRAD_ACCUMULATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_SPLIT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATASET_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EVAL_FIELD_NUMBER: _ClassVar[int]
    VAL_BATCHES_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_REPORT_FIELD_NUMBER: _ClassVar[int]
    SAVE_EVERY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GRAD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    fine_tune_type: FineTuneType
    rank: int
    scale: float
    dropout: float
    num_layers: int
    learning_rate: float
    lr_schedule: LearningRateSchedule
    warmup_steps: int
    iters: int
    epochs: int
    batch_size: int
    max_seq_length: int
    mask_prompt: bool
    grad_accumulation_steps: int
    validation_split: float
    validation_dataset: str
    steps_per_eval: int
    val_batches: int
    steps_per_report: int
    save_every: int
    seed: int
    grad_checkpoint: bool
    def __init__(self, fine_tune_type: _Optional[_Union[FineTuneType, str]] = ..., rank: _Optional[int] = ..., scale: _Optional[float] = ..., dropout: _Optional[float] = ..., num_layers: _Optional[int] = ..., learning_rate: _Optional[float] = ..., lr_schedule: _Optional[_Union[LearningRateSchedule, str]] = ..., warmup_steps: _Optional[int] = ..., iters: _Optional[int] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., max_seq_length: _Optional[int] = ..., mask_prompt: _Optional[bool] = ..., grad_accumulation_steps: _Optional[int] = ..., validation_split: _Optional[float] = ..., validation_dataset: _Optional[str] = ..., steps_per_eval: _Optional[int] = ..., val_batches: _Optional[int] = ..., steps_per_report: _Optional[int] = ..., save_every: _Optional[int] = ..., seed: _Optional[int] = ..., grad_checkpoint: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("step", "path", "sha256", "validation_loss", "save_time")
    STEP_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    SAVE_TIME_FIELD_NUMBER: _ClassVar[int]
    step: int
    path: str
    sha256: str
    validation_loss: float
    save_time: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[int] = ..., path: _Optional[str] = ..., sha256: _Optional[str] = ..., validation_loss: _Optional[float] = ..., save_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("id", "model", "base_version", "dataset", "dataset_sha256", "config", "state", "step", "total_steps", "last_loss", "best_validation_loss", "best_checkpoint", "checkpoints", "failure_reason", "output_version", "mlflow_run_id", "worker", "attempt", "create_time", "start_time", "end_time", "created_by", "output_model", "artifact_path", "artifact_files", "mlflow_status", "cancel_requested", "retried_from", "idempotency_key", "handoffs")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    LAST_LOSS_FIELD_NUMBER: _ClassVar[int]
    BEST_VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    BEST_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODEL_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_PATH_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FILES_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FROM_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    base_version: str
    dataset: str
    dataset_sha256: str
    config: TrainingConfig
    state: TrainingJobState
    step: int
    total_steps: int
    last_loss: float
    best_validation_loss: float
    best_checkpoint: Checkpoint
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    failure_reason: str
    output_version: str
    mlflow_run_id: str
    worker: str
    attempt: int
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    created_by: str
    output_model: str
    artifact_path: str
    artifact_files: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactFile]
    mlflow_status: str
    cancel_requested: bool
    retried_from: str
    idempotency_key: str
    handoffs: int
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., base_version: _Optional[str] = ..., dataset: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., state: _Optional[_Union[TrainingJobState, str]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., last_loss: _Optional[float] = ..., best_validation_loss: _Optional[float] = ..., best_checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., failure_reason: _Optional[str] = ..., output_version: _Optional[str] = ..., mlflow_run_id: _Optional[str] = ..., worker: _Optional[str] = ..., attempt: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., output_model: _Optional[str] = ..., artifact_path: _Optional[str] = ..., artifact_files: _Optional[_Iterable[_Union[_common_pb2.ArtifactFile, _Mapping]]] = ..., mlflow_status: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., retried_from: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., handoffs: _Optional[int] = ...) -> None: ...

class CreateTrainingJobRequest(_message.Message):
    __slots__ = ("model", "dataset", "config", "idempotency_key", "output_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    dataset: str
    config: TrainingConfig
    idempotency_key: str
    output_model: str
    def __init__(self, model: _Optional[str] = ..., dataset: _Optional[str] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., output_model: _Optional[str] = ...) -> None: ...

class CreateTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("state", "model", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: TrainingJobState
    model: str
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[TrainingJobState, str]] = ..., model: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "total_size")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    next_page_token: str
    total_size: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class CancelTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ResumeTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class RetryTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetryTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class WatchTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("step", "loss", "learning_rate", "tokens_per_second", "trained_tokens", "peak_memory_gb", "validation_loss", "has_validation_loss")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TRAINED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    HAS_VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    trained_tokens: int
    peak_memory_gb: float
    validation_loss: float
    has_validation_loss: bool
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., trained_tokens: _Optional[int] = ..., peak_memory_gb: _Optional[float] = ..., validation_loss: _Optional[float] = ..., has_validation_loss: _Optional[bool] = ...) -> None: ...

class WatchTrainingJobResponse(_message.Message):
    __slots__ = ("progress", "job")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    progress: TrainingProgress
    job: TrainingJob
    def __init__(self, progress: _Optional[_Union[TrainingProgress, _Mapping]] = ..., job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingDefaultsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTrainingDefaultsResponse(_message.Message):
    __slots__ = ("config", "limits")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _bounds_pb2.FieldBounds
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_bounds_pb2.FieldBounds, _Mapping]] = ...) -> None: ...
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    config: TrainingConfig
    limits: _containers.MessageMap[str, _bounds_pb2.FieldBounds]
    def __init__(self, config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., limits: _Optional[_Mapping[str, _bounds_pb2.FieldBounds]] = ...) -> None: ...

class GetTrainingMetricsRequest(_message.Message):
    __slots__ = ("window_minutes",)
    WINDOW_MINUTES_FIELD_NUMBER: _ClassVar[int]
    window_minutes: int
    def __init__(self, window_minutes: _Optional[int] = ...) -> None: ...

class TrainingMetricsBucket(_message.Message):
    __slots__ = ("start_time", "trained_tokens", "steps", "tokens_per_second", "running_jobs")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAINED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    trained_tokens: int
    steps: int
    tokens_per_second: float
    running_jobs: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trained_tokens: _Optional[int] = ..., steps: _Optional[int] = ..., tokens_per_second: _Optional[float] = ..., running_jobs: _Optional[int] = ...) -> None: ...

class GetTrainingMetricsResponse(_message.Message):
    __slots__ = ("bucket_seconds", "buckets")
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    bucket_seconds: int
    buckets: _containers.RepeatedCompositeFieldContainer[TrainingMetricsBucket]
    def __init__(self, bucket_seconds: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[TrainingMetricsBucket, _Mapping]]] = ...) -> None: ...
