from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.errors import ConfigError
from router.settings import Secret, describe, load

EXAMPLE = Path(__file__).parents[2] / "config" / "omniroute.example.toml"


def test_example_config_loads_and_is_embedded() -> None:
    settings = load(EXAMPLE, env={})
    assert settings.embedded
    assert settings.http.port == 8080
    assert settings.routing.queues == ("default",)


def test_defaults_without_file() -> None:
    settings = load(env={})
    assert settings.http.port == 8080
    assert settings.http.max_body_bytes == 1024 * 1024


def test_environment_overrides_file_and_uses_documented_names(tmp_path: Path) -> None:
    env = {
        "OMNIROUTE_CONFIG": str(EXAMPLE),
        "OMNIROUTE_HTTP_HOST": "127.0.0.2",
        "OMNIROUTE_HTTP_PORT": "9001",
        "OMNIROUTE_DATA_DIR": str(tmp_path),
        "OMNIROUTE_REDIS_URL": "redis://127.0.0.1:6379/3",
        "OMNIROUTE_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "OMNIROUTE_API_TOKEN": "t0k3n",
        "OMNIROUTE_ROUTING_QUEUES": "default, vip",
    }
    settings = load(env=env)
    assert settings.http.host == "127.0.0.2"
    assert settings.http.port == 9001
    assert settings.data.dir == tmp_path
    assert settings.api.token.get() == "t0k3n"
    assert settings.routing.queues == ("default", "vip")
    assert not settings.embedded


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[http]\nport = 70000\nmystery = 1\n[routing]\nqueues = ["ok", "Not OK"]\n'
        'default_priority = 9\n[log]\nlevel = "loud"\n[extra]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={"OMNIROUTE_DISPATCH_READY_DEPTH": "many"})
    text = "\n".join(caught.value.problems)
    for key in (
        "http.port",
        "http.mystery",
        "routing.queues",
        "routing.default_priority",
        "log.level",
        "[extra]",
        "dispatch.ready_depth ($OMNIROUTE_DISPATCH_READY_DEPTH)",
    ):
        assert key in text
    assert len(caught.value.problems) == 7


def test_half_production_backends_are_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("redis.url / amqp.url")):
        load(env={"OMNIROUTE_REDIS_URL": "redis://127.0.0.1:6379/0"})


def test_default_queue_must_be_configured() -> None:
    with pytest.raises(ConfigError, match=r"routing\.default_queue"):
        load(env={"OMNIROUTE_ROUTING_DEFAULT_QUEUE": "elsewhere"})


def test_invalid_toml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad, env={})
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.toml", env={})


def test_secrets_never_print() -> None:
    settings = load(
        env={
            "OMNIROUTE_API_TOKEN": "supersecret",
            "OMNIROUTE_REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
            "OMNIROUTE_AMQP_URL": "amqp://guest:hunter3@127.0.0.1:5672/",
        }
    )
    shown = repr(settings) + str(describe(settings))
    assert "supersecret" not in shown
    assert "hunter2" not in shown
    assert "hunter3" not in shown
    assert "redis://:***@127.0.0.1:6379/0" in str(describe(settings))
    assert Secret("a") == Secret("a")


def test_policy_tables_and_routing_options(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        "[routing]\nmax_wait_s = [60, 120, 240, 480, 960]\nsticky_days = 7\n"
        '[queues.billing]\ncalendar = "always"\n'
        '[calendars.madrid]\ntimezone = "Europe/Madrid"\nhours = { mon = ["09:00-17:00"] }\n'
        '[[rules]]\nname = "vip"\n'
    )
    settings = load(path, env={})
    assert settings.routing.max_wait_s == (60.0, 120.0, 240.0, 480.0, 960.0)
    assert settings.queue_names == ("default", "billing")
    assert settings.tables.rules == [{"name": "vip"}]
    assert "madrid" in settings.tables.calendars


def test_policy_tables_have_the_right_shape(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text('rules = "none"\n[routing]\nmax_wait_s = [1, 2]\n')
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    text = str(caught.value)
    assert "[rules]: must be an array of tables" in text
    assert "routing.max_wait_s" in text


def test_check_config_names_every_bad_rule_queue_and_calendar(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        '[queues.billing]\ncalendar = "mars"\noverflow = { to = "nowhere", after_s = 60 }\n'
        '[calendars.madrid]\ntimezone = "Europe/Madrid"\n'
        'hours = { mon = ["09:00-13:00", "12:00-17:00"] }\n'
        '[[rules]]\nname = "r"\nmatch.regex = ["(unclosed"]\nthen.queue = "billling"\n'
        'then.sla = "gold"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    text = str(caught.value)
    for key in (
        "queues.billing.calendar",
        "queues.billing.overflow.to",
        "calendars.madrid.hours.mon",
        "rules[0].match.regex",
        "rules[0].then.queue",
        "rules[0].then.sla",
    ):
        assert key in text, key
