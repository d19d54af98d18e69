"""docker-compose.yaml (no Docker engine here): it parses, and every iemk-etl command in it is a valid one."""

import shlex
from pathlib import Path

import yaml

from iemk_etl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _iemk_commands(command):
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_compose_services_and_their_commands():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    assert set(compose["services"]) == {"postgres", "iemk", "emulator", "callback", "airflow"}
    checked = 0
    for service in compose["services"].values():
        for argv in _iemk_commands(service.get("command") or []):
            if argv and argv[0] == "iemk-etl":
                build_parser().parse_args(argv[1:])      # SystemExit (test failure) if not a valid command
                checked += 1
    assert checked == 4
    assert compose["services"]["airflow"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        "postgresql+psycopg://")
