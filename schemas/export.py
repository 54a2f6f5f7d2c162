"""JSON Schemas of every message and config file, generated from the models into json/.

Run `python -m schemas.export` after changing a model; a unit test fails until you do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.constituents import ConstituentPrice, ConstituentSessionEnd
from schemas.indices import IndicesFile
from schemas.instruments import InstrumentsFile
from schemas.rules import RulesFile
from schemas.ticks import SessionEnd, Tick, TickBatch

JSON_DIR = Path(__file__).parent / "json"

MODELS: dict[str, type[BaseModel]] = {
    "tick.schema.json": Tick,
    "session_end.schema.json": SessionEnd,
    "tick_batch.schema.json": TickBatch,
    "alert.schema.json": Alert,
    "instruments.schema.json": InstrumentsFile,
    "rules.schema.json": RulesFile,
    "indices.schema.json": IndicesFile,
    "constituent_price.schema.json": ConstituentPrice,
    "constituent_session_end.schema.json": ConstituentSessionEnd,
}

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of what a producer or an editor may write."""
    return {
        name: {"$schema": _DRAFT, **model.model_json_schema(mode="validation")}
        for name, model in MODELS.items()
    }


def render(schema: dict[str, Any]) -> str:
    """The text of a schema file: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(directory: Path = JSON_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / name).write_text(render(schema), encoding="utf-8")
        print(f"wrote {directory / name}")


if __name__ == "__main__":
    main()
