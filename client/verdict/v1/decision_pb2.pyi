from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_FORMAT_UNSPECIFIED: _ClassVar[ResultFormat]
    RESULT_FORMAT_VALUE: _ClassVar[ResultFormat]
    RESULT_FORMAT_JSON: _ClassVar[ResultFormat]

class SkipReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SKIP_REASON_UNSPECIFIED: _ClassVar[SkipReason]
    SKIP_REASON_NOT_SELECTED: _ClassVar[SkipReason]
    SKIP_REASON_TAG_MISMATCH: _ClassVar[SkipReason]
    SKIP_REASON_CONDITION_FALSE: _ClassVar[SkipReason]
    SKIP_REASON_GRAY_EXCLUDED: _ClassVar[SkipReason]
    SKIP_REASON_ERROR: _ClassVar[SkipReason]
    SKIP_REASON_NOT_FIRST: _ClassVar[SkipReason]
RESULT_FORMAT_UNSPECIFIED: ResultFormat
RESULT_FORMAT_VALUE: ResultFormat
RESULT_FORMAT_JSON: ResultFormat
SKIP_REASON_UNSPECIFIED: SkipReason
SKIP_REASON_NOT_SELECTED: SkipReason
SKIP_REASON_TAG_MISMATCH: SkipReason
SKIP_REASON_CONDITION_FALSE: SkipReason
SKIP_REASON_GRAY_EXCLUDED: SkipReason
SKIP_REASON_ERROR: SkipReason
SKIP_REASON_NOT_FIRST: SkipReason

class EvaluateRequest(_message.Message):
    __slots__ = ("rule_set", "version", "facts", "facts_json", "explain", "expression", "result_format")
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    FACTS_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    RESULT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    rule_set: str
    version: int
    facts: _struct_pb2.Struct
    facts_json: str
    explain: bool
    expression: str
    result_format: ResultFormat
    def __init__(self, rule_set: _Optional[str] = ..., version: _Optional[int] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., facts_json: _Optional[str] = ..., explain: _Optional[bool] = ..., expression: _Optional[str] = ..., result_format: _Optional[_Union[ResultFormat, str]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("result", "matched_rules", "rule_set", "version", "decision_id", "degraded", "error", "trace", "result_json", "defaulted")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MATCHED_RULES_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    DEFAULTED_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    matched_rules: _containers.RepeatedScalarFieldContainer[str]
    rule_set: str
    version: int
    decision_id: str
    degraded: bool
    error: EvalError
    trace: _containers.RepeatedCompositeFieldContainer[RuleTrace]
    result_json: str
    defaulted: bool
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., matched_rules: _Optional[_Iterable[str]] = ..., rule_set: _Optional[str] = ..., version: _Optional[int] = ..., decision_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., error: _Optional[_Union[EvalError, _Mapping]] = ..., trace: _Optional[_Iterable[_Union[RuleTrace, _Mapping]]] = ..., result_json: _Optional[str] = ..., defaulted: _Optional[bool] = ...) -> None: ...

class EvalError(_message.Message):
    __slots__ = ("code", "message", "rule_id", "line", "column")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    rule_id: str
    line: int
    column: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., rule_id: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ...) -> None: ...

class RuleTrace(_message.Message):
    __slots__ = ("rule_id", "evaluated", "matched", "condition", "error", "note")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    evaluated: bool
    matched: bool
    condition: _struct_pb2.Value
    error: EvalError
    note: str
    def __init__(self, rule_id: _Optional[str] = ..., evaluated: _Optional[bool] = ..., matched: _Optional[bool] = ..., condition: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[EvalError, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class EvaluateBatchRequest(_message.Message):
    __slots__ = ("rule_set", "version", "facts", "explain", "facts_json", "result_format")
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    FACTS_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    rule_set: str
    version: int
    facts: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    explain: bool
    facts_json: str
    result_format: ResultFormat
    def __init__(self, rule_set: _Optional[str] = ..., version: _Optional[int] = ..., facts: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., explain: _Optional[bool] = ..., facts_json: _Optional[str] = ..., result_format: _Optional[_Union[ResultFormat, str]] = ...) -> None: ...

class EvaluateBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EvaluateResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[EvaluateResponse, _Mapping]]] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("topic", "tags", "key", "properties", "body_json", "body", "content_type")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    topic: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    key: str
    properties: _containers.ScalarMap[str, str]
    body_json: _struct_pb2.Struct
    body: bytes
    content_type: str
    def __init__(self, topic: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., key: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ..., body_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., body: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("destinations", "skipped", "decision_id")
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[Destination]
    skipped: _containers.RepeatedCompositeFieldContainer[Skipped]
    decision_id: str
    def __init__(self, destinations: _Optional[_Iterable[_Union[Destination, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[Skipped, _Mapping]]] = ..., decision_id: _Optional[str] = ...) -> None: ...

class Destination(_message.Message):
    __slots__ = ("system", "target", "priority", "table", "version")
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    system: str
    target: str
    priority: int
    table: str
    version: int
    def __init__(self, system: _Optional[str] = ..., target: _Optional[str] = ..., priority: _Optional[int] = ..., table: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class Skipped(_message.Message):
    __slots__ = ("system", "table", "reason", "detail", "version")
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    system: str
    table: str
    reason: SkipReason
    detail: str
    version: int
    def __init__(self, system: _Optional[str] = ..., table: _Optional[str] = ..., reason: _Optional[_Union[SkipReason, str]] = ..., detail: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
