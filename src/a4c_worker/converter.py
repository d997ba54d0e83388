"""The data converter shared by worker, clients and the history replayer.

Workflow inputs, outputs and activity payloads are pydantic models; Temporal's pydantic
converter (de)serialises them as JSON. With payload keys configured
(``TEMPORAL_PAYLOAD_KEYS``, see :mod:`a4c_worker.codec`) every payload is then sealed
before it leaves the process, and failures' messages and stack traces travel inside an
encoded payload too (they may quote a step's input), so Temporal stores no address or
name in clear. Every client and replayer must use :func:`data_converter` with the same
keys as the workers; :data:`DATA_CONVERTER` (no keys) reads plain payloads only.
"""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from a4c_worker.codec import EncryptionCodec, PayloadKeys

DATA_CONVERTER: DataConverter = pydantic_data_converter


def data_converter(keys: PayloadKeys | None) -> DataConverter:
    """The converter for ``keys``: sealing payloads and failures, or plain without keys."""
    if keys is None:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


__all__ = ["DATA_CONVERTER", "data_converter"]
