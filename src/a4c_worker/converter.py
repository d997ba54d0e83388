"""The one data converter shared by worker, clients and the history replayer.

Workflow inputs, outputs and activity payloads are pydantic models; Temporal's pydantic
converter (de)serialises them as JSON, so history stays readable and typed. Replaying
recorded histories with another converter would not decode them: always import this.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

DATA_CONVERTER: DataConverter = pydantic_data_converter

__all__ = ["DATA_CONVERTER"]
