"""Hypothesis strategies for any protobuf request message, built from its descriptor.

Each field is left unset or given a value of its type, drawn from hostile extremes
(NaN, infinities, the integer limits, unknown enum numbers, random text and bytes) mixed
with ``known`` values that pass the first checks (the real model name and weights hash,
real images and frames), so that the fuzz reaches past the first refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)  # type: ignore[no-any-return]


def request_class(method: MethodDescriptor) -> type[Message]:
    return message_class(method.input_type)


def mostly(value: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``value`` about three times in four, else ``other``."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda keep: st.just(value) if keep else other
    )


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    small = st.integers(max(low, -3), min(high, 16))  # the values code branches on
    return st.one_of(small, st.sampled_from([low, high]), st.integers(low, high))


def _scalar(
    field: FieldDescriptor, texts: Iterable[str], blobs: Iterable[bytes]
) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _RANGES:
        return _integers(*_RANGES[kind])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = 32 if kind == FieldDescriptor.TYPE_FLOAT else 64
        return st.one_of(st.sampled_from([0.0, -1.0, 0.5, 1.0, 1e300]), st.floats(width=width))
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(list(texts) or [""]), st.text(max_size=24))
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.sampled_from(list(blobs) or [b""]), st.binary(max_size=64))
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-3, 64))
    raise TypeError(f"no strategy for field {field.full_name} of type {kind}")


def messages(
    descriptor: Descriptor,
    texts: Iterable[str] = (),
    blobs: Iterable[bytes] = (),
    depth: int = 3,
    max_repeated: int = 4,
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type with any subset of their fields set.

    ``overrides`` gives the strategy of a field by its full name (at any depth; for a
    repeated field, of one element), e.g. the real model name most of the time, so that
    the fuzz gets past the identity check; such a field is always set.
    """
    texts, blobs = tuple(texts), tuple(blobs)
    overrides = dict(overrides or {})
    cls = message_class(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        value: st.SearchStrategy[Any]
        if field.full_name in overrides:
            value = overrides[field.full_name]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0:
                continue
            value = st.deferred(
                lambda f=field: messages(
                    f.message_type, texts, blobs, depth - 1, max_repeated, overrides
                )
            )
        else:
            value = _scalar(field, texts, blobs)
        if _repeated(field):
            value = st.lists(value, max_size=max_repeated)
        fields[field.name] = value if field.full_name in overrides else st.none() | value

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for field in descriptor.fields:
            value = values.get(field.name)
            if value is None:
                continue
            target = getattr(message, field.name)
            if _is_map(field):  # a map: repeated key/value entries, set by key
                for item in value:
                    if field.message_type.fields_by_name["value"].message_type is None:
                        target[item.key] = item.value
                    else:
                        target[item.key].CopyFrom(item.value)
            elif _repeated(field) and field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)
            elif _repeated(field):
                target.extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(message, field.name, value)
        return message

    return st.fixed_dictionaries(fields).map(build)


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and bool(
        field.message_type.GetOptions().map_entry
    )


def _repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)  # newer protobuf; ``label`` before
    if repeated is None:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)
    return bool(repeated)
