"""Stored events to domain events, as the mapper does it, in about half the time.

A catch-up decodes every event of the log, and eventsourcing's ``Mapper`` spends about
as long around the JSON parse as in it: a ``StoredEvent`` per row, a Python
``object_hook`` call for every JSON object (``metadata`` included), topic and id
convertor look-ups per event. :class:`EventDecoder` gives the same event objects
(same class, same ``__dict__``) by parsing with the C decoder and no hook, converting
only the top-level typed values (``{"_type_": ..., "_data_": ...}``) with the
transcoder's own registered transcodings, and caching what depends on the topic.

It is an optimisation, never a second definition of decoding:

* it runs only when the mapper and its transcoder are exactly eventsourcing's
  ``Mapper`` and ``JSONTranscoder`` (a subclass may decode differently); the cipher and
  compressor, when configured, are applied first exactly as the mapper applies them;
* a typed value anywhere but at the top level (the count of ``"_type_"`` keys in the
  text says so) sends the row to the mapper;
* upcasting runs the class's own ``upcast_vN_vN+1`` methods, as the mapper does;
* any error sends the row to the mapper, so a poison event fails with the mapper's own
  error. ``tests/projector/test_decoding.py`` checks every event type against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, cast

from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

from a4c_projector.eventlog.source import Notification

_parse = json.JSONDecoder().raw_decode  # no object_hook: the C scanner only
TYPE_KEY = '"_type_"'  # as it appears in the JSON text only as a key (a value is escaped)


class _EventClass(NamedTuple):
    cls: type
    convert_id: Callable[[Any], Any]
    class_version: int


class EventDecoder:
    """``decode(notification)`` → the domain event ``mapper.to_domain_event`` gives."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        transcoder = mapper.transcoder
        self.fast = type(mapper) is Mapper and type(transcoder) is JSONTranscoder
        self._transcodings: dict[str, Transcoding] = (
            cast(JSONTranscoder, transcoder).names if self.fast else {}
        )
        self._classes: dict[tuple[str, type], _EventClass] = {}

    def decode(self, notification: Notification) -> Any:
        if self.fast:
            try:
                event = self._decode_fast(notification)
            except Exception:  # the mapper decodes it, or names the failure
                event = None
            if event is not None:
                return event
        return self.mapper.to_domain_event(
            StoredEvent(
                originator_id=notification.originator_id,
                originator_version=notification.originator_version,
                topic=notification.topic,
                state=notification.state,
            )
        )

    def _decode_fast(self, notification: Notification) -> Any:
        """The event, or None when this row needs the mapper."""
        stored = notification.state
        if self.mapper.cipher is not None:
            stored = self.mapper.cipher.decrypt(stored)
        if self.mapper.compressor is not None:
            stored = self.mapper.compressor.decompress(stored)
        text = stored.decode("utf8")
        state, end = _parse(text)  # json.loads less its two whitespace regexes per call
        if end != len(text):
            return None  # trailing text: let the mapper judge it
        typed = text.count(TYPE_KEY)
        if typed:
            converted = 0
            for key, value in state.items():
                if type(value) is dict and len(value) == 2 and "_type_" in value:
                    if "_data_" not in value:
                        return None
                    state[key] = self._transcodings[value["_type_"]].decode(value["_data_"])
                    converted += 1
            if converted != typed:
                return None
        event_class = self._event_class(notification.topic, type(notification.originator_id))
        state["originator_id"] = event_class.convert_id(notification.originator_id)
        state["originator_version"] = notification.originator_version
        version = state.pop("class_version", 1)
        while version < event_class.class_version:
            getattr(event_class.cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        event: Any = object.__new__(event_class.cls)
        object.__setattr__(event, "__dict__", state)
        return event

    def _event_class(self, topic: str, id_type: type) -> _EventClass:
        found = self._classes.get((topic, id_type))
        if found is None:
            cls = resolve_topic(topic)
            found = _EventClass(
                cls,
                find_id_convertor(cls, cast(Hashable, id_type)),
                getattr(cls, "class_version", 1),
            )
            self._classes[(topic, id_type)] = found
        return found
