import json

import pytest

from schemas.export import JSON_DIR, json_schemas, render

REGENERATE = "run `python -m schemas.export` and commit schemas/json/"


def test_every_schema_file_is_generated() -> None:
    committed = sorted(path.name for path in JSON_DIR.glob("*.schema.json"))
    assert committed == sorted(json_schemas()), f"schemas/json/ is out of date: {REGENERATE}"


@pytest.mark.parametrize(("name", "schema"), sorted(json_schemas().items()))
def test_a_committed_schema_equals_the_model(name: str, schema: dict[str, object]) -> None:
    path = JSON_DIR / name
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == schema, f"{path} no longer matches its model: {REGENERATE}"
    assert text == render(schema), f"{path} is not formatted as generated: {REGENERATE}"
