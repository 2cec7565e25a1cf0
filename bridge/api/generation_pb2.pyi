from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    REFINE: _ClassVar[Operation]
    EXTEND: _ClassVar[Operation]
    INPAINT: _ClassVar[Operation]
    GENERATE: _ClassVar[Operation]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    QUEUED: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]

class TakeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAKE_STATUS_UNSPECIFIED: _ClassVar[TakeStatus]
    DRAFT: _ClassVar[TakeStatus]
    NEEDS_REVIEW: _ClassVar[TakeStatus]
    OK: _ClassVar[TakeStatus]
    APPROVED: _ClassVar[TakeStatus]
    REJECTED: _ClassVar[TakeStatus]

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    PRORES_422_HQ: _ClassVar[Codec]
    FFV1: _ClassVar[Codec]
    PNG_SEQUENCE: _ClassVar[Codec]
    H264_PROXY: _ClassVar[Codec]
    EXR_SEQUENCE: _ClassVar[Codec]
    DNXHR: _ClassVar[Codec]

class ExtendSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXTEND_SIDE_UNSPECIFIED: _ClassVar[ExtendSide]
    TAIL: _ClassVar[ExtendSide]
    HEAD: _ClassVar[ExtendSide]

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_DRAFT: _ClassVar[Tier]
    TIER_FINAL: _ClassVar[Tier]

class FallbackPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_POLICY_UNSPECIFIED: _ClassVar[FallbackPolicy]
    FAIL: _ClassVar[FallbackPolicy]
    DEGRADE: _ClassVar[FallbackPolicy]
    CLASSIC: _ClassVar[FallbackPolicy]

class GenerateMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATE_MODE_UNSPECIFIED: _ClassVar[GenerateMode]
    TEXT: _ClassVar[GenerateMode]
    IMAGE: _ClassVar[GenerateMode]
    KEYFRAMES: _ClassVar[GenerateMode]
    REFERENCES: _ClassVar[GenerateMode]

class CameraMove(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_MOVE_UNSPECIFIED: _ClassVar[CameraMove]
    STATIC: _ClassVar[CameraMove]
    PUSH_IN: _ClassVar[CameraMove]
    PULL_OUT: _ClassVar[CameraMove]
    PAN_LEFT: _ClassVar[CameraMove]
    PAN_RIGHT: _ClassVar[CameraMove]
    TILT_UP: _ClassVar[CameraMove]
    TILT_DOWN: _ClassVar[CameraMove]
OPERATION_UNSPECIFIED: Operation
REFINE: Operation
EXTEND: Operation
INPAINT: Operation
GENERATE: Operation
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState
TAKE_STATUS_UNSPECIFIED: TakeStatus
DRAFT: TakeStatus
NEEDS_REVIEW: TakeStatus
OK: TakeStatus
APPROVED: TakeStatus
REJECTED: TakeStatus
CODEC_UNSPECIFIED: Codec
PRORES_422_HQ: Codec
FFV1: Codec
PNG_SEQUENCE: Codec
H264_PROXY: Codec
EXR_SEQUENCE: Codec
DNXHR: Codec
EXTEND_SIDE_UNSPECIFIED: ExtendSide
TAIL: ExtendSide
HEAD: ExtendSide
TIER_UNSPECIFIED: Tier
TIER_DRAFT: Tier
TIER_FINAL: Tier
FALLBACK_POLICY_UNSPECIFIED: FallbackPolicy
FAIL: FallbackPolicy
DEGRADE: FallbackPolicy
CLASSIC: FallbackPolicy
GENERATE_MODE_UNSPECIFIED: GenerateMode
TEXT: GenerateMode
IMAGE: GenerateMode
KEYFRAMES: GenerateMode
REFERENCES: GenerateMode
CAMERA_MOVE_UNSPECIFIED: CameraMove
STATIC: CameraMove
PUSH_IN: CameraMove
PULL_OUT: CameraMove
PAN_LEFT: CameraMove
PAN_RIGHT: CameraMove
TILT_UP: CameraMove
TILT_DOWN: CameraMove

class Rate(_message.Message):
    __slots__ = ("num", "den")
    NUM_FIELD_NUMBER: _ClassVar[int]
    DEN_FIELD_NUMBER: _ClassVar[int]
    num: int
    den: int
    def __init__(self, num: _Optional[int] = ..., den: _Optional[int] = ...) -> None: ...

class FrameRange(_message.Message):
    __slots__ = ("start_frame", "frame_count", "rate")
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    start_frame: int
    frame_count: int
    rate: Rate
    def __init__(self, start_frame: _Optional[int] = ..., frame_count: _Optional[int] = ..., rate: _Optional[_Union[Rate, _Mapping]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackendInfo(_message.Message):
    __slots__ = ("name", "available", "unavailable_reason", "operations", "device", "models")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    available: bool
    unavailable_reason: str
    operations: _containers.RepeatedScalarFieldContainer[Operation]
    device: str
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, name: _Optional[str] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[Operation, str]]] = ..., device: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "pipeline", "operations", "native_width", "native_height", "native_rate")
    ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NATIVE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NATIVE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NATIVE_RATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    pipeline: str
    operations: _containers.RepeatedScalarFieldContainer[Operation]
    native_width: int
    native_height: int
    native_rate: Rate
    def __init__(self, id: _Optional[str] = ..., pipeline: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[Operation, str]]] = ..., native_width: _Optional[int] = ..., native_height: _Optional[int] = ..., native_rate: _Optional[_Union[Rate, _Mapping]] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("server_version", "api_version", "backends", "default_backend", "codecs", "max_frames", "max_handles", "versions", "allowed_media_roots", "max_upload_bytes", "workers")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BACKEND_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_HANDLES_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MEDIA_ROOTS_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    api_version: str
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    default_backend: str
    codecs: _containers.RepeatedScalarFieldContainer[Codec]
    max_frames: int
    max_handles: int
    versions: _containers.ScalarMap[str, str]
    allowed_media_roots: _containers.RepeatedScalarFieldContainer[str]
    max_upload_bytes: int
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, server_version: _Optional[str] = ..., api_version: _Optional[str] = ..., backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ..., default_backend: _Optional[str] = ..., codecs: _Optional[_Iterable[_Union[Codec, str]]] = ..., max_frames: _Optional[int] = ..., max_handles: _Optional[int] = ..., versions: _Optional[_Mapping[str, str]] = ..., allowed_media_roots: _Optional[_Iterable[str]] = ..., max_upload_bytes: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class FrameRef(_message.Message):
    __slots__ = ("url", "frame")
    URL_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    url: str
    frame: int
    def __init__(self, url: _Optional[str] = ..., frame: _Optional[int] = ...) -> None: ...

class GenerateParams(_message.Message):
    __slots__ = ("mode", "first", "last", "camera", "camera_amount", "width", "height", "burn_in")
    MODE_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    CAMERA_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BURN_IN_FIELD_NUMBER: _ClassVar[int]
    mode: GenerateMode
    first: FrameRef
    last: FrameRef
    camera: CameraMove
    camera_amount: float
    width: int
    height: int
    burn_in: bool
    def __init__(self, mode: _Optional[_Union[GenerateMode, str]] = ..., first: _Optional[_Union[FrameRef, _Mapping]] = ..., last: _Optional[_Union[FrameRef, _Mapping]] = ..., camera: _Optional[_Union[CameraMove, str]] = ..., camera_amount: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., burn_in: _Optional[bool] = ...) -> None: ...

class RefineParams(_message.Message):
    __slots__ = ("strength",)
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    strength: float
    def __init__(self, strength: _Optional[float] = ...) -> None: ...

class ExtendParams(_message.Message):
    __slots__ = ("side", "frames", "context_frames")
    SIDE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    side: ExtendSide
    frames: int
    context_frames: int
    def __init__(self, side: _Optional[_Union[ExtendSide, str]] = ..., frames: _Optional[int] = ..., context_frames: _Optional[int] = ...) -> None: ...

class InpaintParams(_message.Message):
    __slots__ = ("mask_url", "invert", "grow_pixels")
    MASK_URL_FIELD_NUMBER: _ClassVar[int]
    INVERT_FIELD_NUMBER: _ClassVar[int]
    GROW_PIXELS_FIELD_NUMBER: _ClassVar[int]
    mask_url: str
    invert: bool
    grow_pixels: int
    def __init__(self, mask_url: _Optional[str] = ..., invert: _Optional[bool] = ..., grow_pixels: _Optional[int] = ...) -> None: ...

class ReferenceImage(_message.Message):
    __slots__ = ("url", "role", "name")
    URL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    url: str
    role: str
    name: str
    def __init__(self, url: _Optional[str] = ..., role: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Constraints(_message.Message):
    __slots__ = ("max_frames", "keep_head_frames", "keep_tail_frames", "mask_feather_px")
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    KEEP_HEAD_FRAMES_FIELD_NUMBER: _ClassVar[int]
    KEEP_TAIL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MASK_FEATHER_PX_FIELD_NUMBER: _ClassVar[int]
    max_frames: int
    keep_head_frames: int
    keep_tail_frames: int
    mask_feather_px: int
    def __init__(self, max_frames: _Optional[int] = ..., keep_head_frames: _Optional[int] = ..., keep_tail_frames: _Optional[int] = ..., mask_feather_px: _Optional[int] = ...) -> None: ...

class OutputSpec(_message.Message):
    __slots__ = ("codec", "bit_depth", "take_dir")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    BIT_DEPTH_FIELD_NUMBER: _ClassVar[int]
    TAKE_DIR_FIELD_NUMBER: _ClassVar[int]
    codec: Codec
    bit_depth: int
    take_dir: str
    def __init__(self, codec: _Optional[_Union[Codec, str]] = ..., bit_depth: _Optional[int] = ..., take_dir: _Optional[str] = ...) -> None: ...

class ReviewCriteria(_message.Message):
    __slots__ = ("thresholds",)
    class ThresholdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    thresholds: _containers.ScalarMap[str, float]
    def __init__(self, thresholds: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("max_frames", "max_compute_seconds")
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_frames: int
    max_compute_seconds: float
    def __init__(self, max_frames: _Optional[int] = ..., max_compute_seconds: _Optional[float] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("name", "host", "device", "memory_gb", "loaded_models", "busy", "backends", "devices")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    device: str
    memory_gb: float
    loaded_models: _containers.RepeatedScalarFieldContainer[str]
    busy: bool
    backends: _containers.RepeatedScalarFieldContainer[str]
    devices: int
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., device: _Optional[str] = ..., memory_gb: _Optional[float] = ..., loaded_models: _Optional[_Iterable[str]] = ..., busy: _Optional[bool] = ..., backends: _Optional[_Iterable[str]] = ..., devices: _Optional[int] = ...) -> None: ...

class ShotContract(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "reference_images", "constraints", "output", "review", "seed", "fallback", "budget", "color", "role", "purpose", "characters", "must_not_change")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    MUST_NOT_CHANGE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    reference_images: _containers.RepeatedCompositeFieldContainer[ReferenceImage]
    constraints: Constraints
    output: OutputSpec
    review: ReviewCriteria
    seed: int
    fallback: FallbackPolicy
    budget: Budget
    color: ColorSpec
    role: str
    purpose: str
    characters: _containers.RepeatedCompositeFieldContainer[Character]
    must_not_change: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., reference_images: _Optional[_Iterable[_Union[ReferenceImage, _Mapping]]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., output: _Optional[_Union[OutputSpec, _Mapping]] = ..., review: _Optional[_Union[ReviewCriteria, _Mapping]] = ..., seed: _Optional[int] = ..., fallback: _Optional[_Union[FallbackPolicy, str]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., color: _Optional[_Union[ColorSpec, _Mapping]] = ..., role: _Optional[str] = ..., purpose: _Optional[str] = ..., characters: _Optional[_Iterable[_Union[Character, _Mapping]]] = ..., must_not_change: _Optional[_Iterable[str]] = ...) -> None: ...

class Character(_message.Message):
    __slots__ = ("name", "description", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class ColorSpec(_message.Message):
    __slots__ = ("input_space", "config")
    INPUT_SPACE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    input_space: str
    config: str
    def __init__(self, input_space: _Optional[str] = ..., config: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("request_id", "operation", "selection_otio", "refine", "extend", "inpaint", "generate", "contract", "backend", "model", "client", "tier", "promoted_from")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SELECTION_OTIO_FIELD_NUMBER: _ClassVar[int]
    REFINE_FIELD_NUMBER: _ClassVar[int]
    EXTEND_FIELD_NUMBER: _ClassVar[int]
    INPAINT_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FROM_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    operation: Operation
    selection_otio: str
    refine: RefineParams
    extend: ExtendParams
    inpaint: InpaintParams
    generate: GenerateParams
    contract: ShotContract
    backend: str
    model: str
    client: str
    tier: Tier
    promoted_from: str
    def __init__(self, request_id: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., selection_otio: _Optional[str] = ..., refine: _Optional[_Union[RefineParams, _Mapping]] = ..., extend: _Optional[_Union[ExtendParams, _Mapping]] = ..., inpaint: _Optional[_Union[InpaintParams, _Mapping]] = ..., generate: _Optional[_Union[GenerateParams, _Mapping]] = ..., contract: _Optional[_Union[ShotContract, _Mapping]] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ..., client: _Optional[str] = ..., tier: _Optional[_Union[Tier, str]] = ..., promoted_from: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "step", "total", "fraction", "eta_seconds")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    step: int
    total: int
    fraction: float
    eta_seconds: float
    def __init__(self, stage: _Optional[str] = ..., step: _Optional[int] = ..., total: _Optional[int] = ..., fraction: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class MediaInfo(_message.Message):
    __slots__ = ("url", "codec", "width", "height", "rate", "frame_count", "start_timecode", "drop_frame", "pixel_format", "sha256")
    URL_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    START_TIMECODE_FIELD_NUMBER: _ClassVar[int]
    DROP_FRAME_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    url: str
    codec: Codec
    width: int
    height: int
    rate: Rate
    frame_count: int
    start_timecode: str
    drop_frame: bool
    pixel_format: str
    sha256: str
    def __init__(self, url: _Optional[str] = ..., codec: _Optional[_Union[Codec, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., rate: _Optional[_Union[Rate, _Mapping]] = ..., frame_count: _Optional[int] = ..., start_timecode: _Optional[str] = ..., drop_frame: _Optional[bool] = ..., pixel_format: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class Take(_message.Message):
    __slots__ = ("take_id", "job_id", "shot", "version", "operation", "status", "media", "manifest_url", "source_range", "generated_frames", "flags", "review_note", "reviewer", "created_unix_ms", "seed", "backend", "model", "extend_side", "selected_range", "tier", "promoted_from")
    TAKE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHOT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RANGE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    REVIEW_NOTE_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EXTEND_SIDE_FIELD_NUMBER: _ClassVar[int]
    SELECTED_RANGE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FROM_FIELD_NUMBER: _ClassVar[int]
    take_id: str
    job_id: str
    shot: str
    version: int
    operation: Operation
    status: TakeStatus
    media: MediaInfo
    manifest_url: str
    source_range: FrameRange
    generated_frames: int
    flags: _containers.RepeatedScalarFieldContainer[str]
    review_note: str
    reviewer: str
    created_unix_ms: int
    seed: int
    backend: str
    model: str
    extend_side: ExtendSide
    selected_range: FrameRange
    tier: Tier
    promoted_from: str
    def __init__(self, take_id: _Optional[str] = ..., job_id: _Optional[str] = ..., shot: _Optional[str] = ..., version: _Optional[int] = ..., operation: _Optional[_Union[Operation, str]] = ..., status: _Optional[_Union[TakeStatus, str]] = ..., media: _Optional[_Union[MediaInfo, _Mapping]] = ..., manifest_url: _Optional[str] = ..., source_range: _Optional[_Union[FrameRange, _Mapping]] = ..., generated_frames: _Optional[int] = ..., flags: _Optional[_Iterable[str]] = ..., review_note: _Optional[str] = ..., reviewer: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., seed: _Optional[int] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ..., extend_side: _Optional[_Union[ExtendSide, str]] = ..., selected_range: _Optional[_Union[FrameRange, _Mapping]] = ..., tier: _Optional[_Union[Tier, str]] = ..., promoted_from: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "request_id", "operation", "state", "shot", "progress", "error", "error_code", "take", "last_event_seq", "backend", "attempts", "created_unix_ms", "started_unix_ms", "finished_unix_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHOT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    operation: Operation
    state: JobState
    shot: str
    progress: Progress
    error: str
    error_code: str
    take: Take
    last_event_seq: int
    backend: str
    attempts: int
    created_unix_ms: int
    started_unix_ms: int
    finished_unix_ms: int
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., shot: _Optional[str] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., error: _Optional[str] = ..., error_code: _Optional[str] = ..., take: _Optional[_Union[Take, _Mapping]] = ..., last_event_seq: _Optional[int] = ..., backend: _Optional[str] = ..., attempts: _Optional[int] = ..., created_unix_ms: _Optional[int] = ..., started_unix_ms: _Optional[int] = ..., finished_unix_ms: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "shot", "limit")
    STATES_FIELD_NUMBER: _ClassVar[int]
    SHOT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    shot: str
    limit: int
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., shot: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq", "include_previews")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    include_previews: bool
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., include_previews: _Optional[bool] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("seq", "job_id", "time_unix_ms", "state", "queued", "started", "progress", "preview", "take_ready", "failed", "cancelled")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    TAKE_READY_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    job_id: str
    time_unix_ms: int
    state: JobState
    queued: Queued
    started: Started
    progress: Progress
    preview: Preview
    take_ready: Take
    failed: Failure
    cancelled: Cancelled
    def __init__(self, seq: _Optional[int] = ..., job_id: _Optional[str] = ..., time_unix_ms: _Optional[int] = ..., state: _Optional[_Union[JobState, str]] = ..., queued: _Optional[_Union[Queued, _Mapping]] = ..., started: _Optional[_Union[Started, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., preview: _Optional[_Union[Preview, _Mapping]] = ..., take_ready: _Optional[_Union[Take, _Mapping]] = ..., failed: _Optional[_Union[Failure, _Mapping]] = ..., cancelled: _Optional[_Union[Cancelled, _Mapping]] = ...) -> None: ...

class Queued(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Started(_message.Message):
    __slots__ = ("backend", "device", "attempt")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    backend: str
    device: str
    attempt: int
    def __init__(self, backend: _Optional[str] = ..., device: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("frame", "jpeg", "width", "height")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    JPEG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    frame: int
    jpeg: bytes
    width: int
    height: int
    def __init__(self, frame: _Optional[int] = ..., jpeg: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Cancelled(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ReviewTakeRequest(_message.Message):
    __slots__ = ("take_id", "approve", "note", "reviewer")
    TAKE_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    take_id: str
    approve: bool
    note: str
    reviewer: str
    def __init__(self, take_id: _Optional[str] = ..., approve: _Optional[bool] = ..., note: _Optional[str] = ..., reviewer: _Optional[str] = ...) -> None: ...

class MediaChunk(_message.Message):
    __slots__ = ("sha256", "filename", "offset", "data", "total_size")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    filename: str
    offset: int
    data: bytes
    total_size: int
    def __init__(self, sha256: _Optional[str] = ..., filename: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...

class MediaObject(_message.Message):
    __slots__ = ("sha256", "url", "size", "already_present")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    url: str
    size: int
    already_present: bool
    def __init__(self, sha256: _Optional[str] = ..., url: _Optional[str] = ..., size: _Optional[int] = ..., already_present: _Optional[bool] = ...) -> None: ...

class DownloadMediaRequest(_message.Message):
    __slots__ = ("sha256", "take_id", "chunk_size")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TAKE_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    take_id: str
    chunk_size: int
    def __init__(self, sha256: _Optional[str] = ..., take_id: _Optional[str] = ..., chunk_size: _Optional[int] = ...) -> None: ...
