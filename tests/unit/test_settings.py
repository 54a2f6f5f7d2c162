import pytest

from schemas.errors import ConfigError
from schemas.settings import load_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TICKWATCH_KAFKA_BOOTSTRAP", "TICKWATCH_REDIS_URL", "TICKWATCH_WEB_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.bootstrap_servers == ["127.0.0.1:9092"]
    assert settings.topic_ticks == "ticks"
    assert settings.rules_file is None and settings.instruments_file is None


def test_values_come_from_tickwatch_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWATCH_KAFKA_BOOTSTRAP", "k1:9092, k2:9093")
    monkeypatch.setenv("TICKWATCH_TICKS_PARTITIONS", "12")
    settings = load_settings()
    assert settings.bootstrap_servers == ["k1:9092", "k2:9093"]
    assert settings.ticks_partitions == 12


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TICKWATCH_WEB_PORT", "http"),
        ("TICKWATCH_WEB_PORT", "70000"),
        ("TICKWATCH_KAFKA_BOOTSTRAP", "localhost"),
        ("TICKWATCH_REDIS_URL", "localhost:6379"),
        ("TICKWATCH_TICKS_PARTITIONS", "0"),
        ("TICKWATCH_BATCH_MAX", "0"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert repr(value) in message
    assert "\n" not in message
