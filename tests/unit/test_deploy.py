"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

No engine runs here, so these read the files the way compose would and check
what the scale-out promises: healthy services before the app starts, two or
more replicas, required settings that stop compose at once when missing, and
nginx running the same deploy/nginx.conf that tests/integration/test_scale.py
runs with Debian's nginx.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from support import ROOT

from app.cli import parser

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")


def test_postgres_and_redis_report_their_health() -> None:
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_the_app_waits_for_healthy_services_and_runs_two_replicas() -> None:
    app = SERVICES["app"]
    assert app["deploy"]["replicas"] >= 2
    for name in ("postgres", "redis"):
        assert app["depends_on"][name]["condition"] == "service_healthy"
    assert SERVICES["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"


def test_required_settings_fail_fast() -> None:
    env = SERVICES["app"]["environment"]
    assert env["TALKROOM_ENV"] == "production"
    required = {name for value in env.values() for name in REQUIRED.findall(str(value))}
    assert required == {"TALKROOM_SECRET_KEY", "POSTGRES_PASSWORD"}
    assert env["TALKROOM_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["TALKROOM_REDIS_URL"].startswith("redis://redis:")


def test_nginx_runs_the_tested_config_in_front_of_the_app() -> None:
    mounts = SERVICES["nginx"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server app:8000;", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf


def dockerfile_command() -> list[str]:
    return json.loads(re.search(r"^CMD (.*)$", DOCKERFILE, re.M)[1])


@pytest.mark.parametrize("command", [SERVICES["app"]["command"], dockerfile_command()])
def test_the_app_command_is_a_talkroom_command(command: list[str]) -> None:
    assert command[0] == "talkroom"
    args = parser().parse_args(command[1:])
    assert args.command == "serve" and args.host == "0.0.0.0" and args.port == 8000


def test_the_dockerfile_copies_what_exists() -> None:
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, re.M):
        *sources, _target = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source
