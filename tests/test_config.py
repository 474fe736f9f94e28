"""Settings: defaults, environment, overrides, validation with messages naming the setting."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from server.config import (
    ConfigError,
    DefaultConfig,
    Settings,
    client_settings,
    hash_token,
    load_config,
)
from server.core.models import Role
from tests.helpers import SECRET, TOKENS

VALID = {"SPLITWERK_SECRET_KEY": SECRET, "SPLITWERK_TOKENS": TOKENS}


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = load_config(environ=VALID)
    assert settings.REDIS_SOCKET_TIMEOUT == 0.25
    assert settings.RETENTION_DAYS == 90
    assert settings.PORT == 8000
    assert settings.DEV is False


def test_environment_overrides_defaults_and_overrides_win() -> None:
    environ = {**VALID, "SPLITWERK_PORT": "9000", "SPLITWERK_DEV": "yes"}
    assert load_config(environ=environ).PORT == 9000
    assert load_config(environ=environ).DEV is True
    assert load_config({"PORT": 9100}, environ=environ).PORT == 9100


def test_tokens_are_parsed_with_roles_and_editor_can_view() -> None:
    settings = load_config(environ=VALID)
    assert {token.role for token in settings.TOKENS} == set(Role)
    viewers = {token.name for token in settings.tokens_for(Role.VIEWER)}
    assert viewers == {"viktor", "erika"}
    assert {token.name for token in settings.tokens_for(Role.EDITOR)} == {"erika"}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SPLITWERK_PORT": "eighty"}, "SPLITWERK_PORT"),
        ({"SPLITWERK_PORT": "70000"}, "SPLITWERK_PORT"),
        ({"SPLITWERK_REDIS_SOCKET_TIMEOUT": "0"}, "SPLITWERK_REDIS_SOCKET_TIMEOUT"),
        ({"SPLITWERK_REDIS_RETRIES": "-1"}, "SPLITWERK_REDIS_RETRIES"),
        ({"SPLITWERK_REDIS_URL": "http://redis"}, "SPLITWERK_REDIS_URL"),
        ({"SPLITWERK_DEV": "maybe"}, "SPLITWERK_DEV"),
        ({"SPLITWERK_SECRET_KEY": "short"}, "SPLITWERK_SECRET_KEY"),
        ({"SPLITWERK_TOKENS": "admin:x:abc"}, "SPLITWERK_TOKENS"),
        ({"SPLITWERK_TOKENS": ""}, "SPLITWERK_TOKENS"),
        ({"SPLITWERK_LOG_LEVEL": "LOUD"}, "SPLITWERK_LOG_LEVEL"),
        ({"SPLITWERK_RETENTION_DAYS": "0"}, "SPLITWERK_RETENTION_DAYS"),
    ],
)
def test_invalid_setting_is_refused_with_its_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(environ={**VALID, **environ})


def test_malformed_token_message_does_not_echo_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={**VALID, "SPLITWERK_TOKENS": "editor:x:not-a-hash-secret"})
    assert "not-a-hash-secret" not in str(caught.value)


def test_dev_mode_may_run_without_tokens() -> None:
    settings = load_config(environ={"SPLITWERK_SECRET_KEY": SECRET, "SPLITWERK_DEV": "1"})
    assert settings.TOKENS == ()


def test_hash_token_is_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token("x"))
    assert hash_token("x") != hash_token("y")


def test_client_settings_default_to_local_server() -> None:
    assert client_settings({}) == ("http://127.0.0.1:8000", None)
    assert client_settings({"SPLITWERK_URL": "http://h:1", "SPLITWERK_TOKEN": "t"}) == (
        "http://h:1",
        "t",
    )


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for item in dataclasses.fields(DefaultConfig):
        assert f"| `{item.name}` |" in readme, item.name
    assert issubclass(Settings, DefaultConfig)
