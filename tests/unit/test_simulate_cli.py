"""``omniroute simulate`` end to end: generate a day to a file, replay it, print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.cli import main

CONFIG = Path(__file__).parents[2] / "config" / "simulate"
AGENTS = str(CONFIG / "agents.toml")
POLICY = str(CONFIG / "policy.toml")


def test_generate_then_replay_prints_the_three_orderings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = tmp_path / "day.jsonl"
    code = main(
        [
            "simulate",
            "--generate",
            "--overload",
            "1.2",
            "--seed",
            "2",
            "--agents",
            AGENTS,
            "--out",
            str(day),
        ]
    )
    assert code == 0
    lines = day.read_text().splitlines()
    assert len(lines) > 500
    assert "generated" in capsys.readouterr().err

    code = main(
        ["simulate", "--traffic", str(day), "--agents", AGENTS, "--policy", POLICY, "--progress"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "policy" in out
    assert "fifo" in out
    assert "strict" in out
    assert "simulating [" in err
    assert "100%" in err

    code = main(
        [
            "simulate",
            "--traffic",
            str(day),
            "--agents",
            AGENTS,
            "--policy",
            POLICY,
            "--json",
            "--orderings",
            "policy,fifo",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(data["orderings"]) == {"policy", "fifo"}
    assert data["orderings"]["fifo"]["count"] == len(lines)


def test_generate_and_simulate_in_one_go_is_the_same_as_two_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = tmp_path / "day.jsonl"
    args = ["--seed", "3", "--agents", AGENTS, "--json"]
    main(["simulate", "--generate", "--out", str(day), "--policy", POLICY, *args])
    once = json.loads(capsys.readouterr().out)
    main(["simulate", "--traffic", str(day), "--policy", POLICY, *args])
    assert json.loads(capsys.readouterr().out) == once


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agents", AGENTS], "exactly one of --traffic FILE and --generate"),
        (
            ["--generate", "--agents", AGENTS, "--policy", POLICY, "--orderings", "lifo"],
            "unknown ['lifo']",
        ),
        (
            ["--traffic", "/nonexistent.jsonl", "--agents", AGENTS, "--policy", POLICY],
            "/nonexistent.jsonl",
        ),
        (["--generate", "--agents", "/nonexistent.toml"], "/nonexistent.toml"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *argv]) == 2
    assert message in capsys.readouterr().err
