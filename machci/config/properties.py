"""machci.yaml's JSON Schema as data (machci.schema.json): the one list of keys, defaults and
allowed values. Apart from schema.py, which validates with jsonschema and reads ruamel.yaml's
values, so that the model's defaults import neither."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA: dict[str, Any] = json.loads(
    resources.files("machci.config").joinpath("machci.schema.json").read_text(encoding="utf-8")
)
PROPERTIES: dict[str, Any] = SCHEMA["properties"]
