"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

from pathlib import Path

import yaml

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_sets_only_known_settings_and_mounts_existing_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "topics", "worker", "prometheus", "grafana"} <= services.keys()
    known = {f"TICKWATCH_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        for variable in service.get("environment", {}):
            if variable.startswith("TICKWATCH_"):
                assert variable in known, f"{name}: unknown setting {variable}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert services["worker"]["command"] == ["worker"]
    assert services["topics"]["command"] == ["topics"]
