"""docker-compose.yml, deploy/nginx.conf and the Dockerfile, checked without a Docker engine.

No engine runs here, so these read the files the way compose, nginx and Docker
would and check what the scale-out promises: PostgreSQL and Redis healthy before
the app starts and the app healthy before nginx; required settings that stop
compose at once, with a message, when missing; an app environment the settings
really read, with one secret for every replica; nginx upgrading WebSockets to
the port the app serves on; an image that runs ``talkroom serve`` as PID 1, not
as root.

Each check is a function of the three files' text, so ``test_each_check_can_fail``
can feed it a broken copy and show that it notices.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url
from support import ROOT

from app.cli import parser
from app.settings import Settings

# Values for compose's variables while reading the file; any non-empty ones would do.
VARIABLES = {"TALKROOM_SECRET_KEY": "s3cret-for-every-replica", "POSTGRES_PASSWORD": "pg-pass"}
# The variables compose must refuse to run without.
REQUIRED = {"TALKROOM_SECRET_KEY", "POSTGRES_PASSWORD"}


# ---- Reading the files as their programs do -------------------------------------


class MissingVariable(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


# compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?message}, ${VAR?message} (the colon forms also treat "" as unset).
REFERENCE = re.compile(r"\$(?:(\$)|(\w+)|\{(\w+)(?:(:?)([-?])([^}]*))?\})")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        escaped, bare, name, colon, kind, arg = m.groups()
        if escaped:
            return "$"
        name = name or bare
        value = env.get(name)
        unset = value is None or (colon == ":" and value == "")
        if kind == "?" and unset:
            raise MissingVariable(name, arg)
        if kind == "-" and unset:
            return arg
        return value or ""

    return REFERENCE.sub(one, text)


def references(text: str) -> list[tuple[str, str | None]]:
    """(name, "?" for required, "-" for defaulted, None for neither) of each variable."""
    found: list[tuple[str, str | None]] = []
    for m in REFERENCE.finditer(text):
        escaped, bare, name, _colon, kind, _arg = m.groups()
        if not escaped:
            found.append((name or bare, kind))
    return found


def walk_strings(node: Any, visit: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: walk_strings(v, visit) for k, v in node.items()}
    if isinstance(node, list):
        return [walk_strings(v, visit) for v in node]
    return visit(node) if isinstance(node, str) else node


@dataclass
class Nginx:
    """One nginx directive: ``name args;`` or ``name args { children }``."""

    name: str
    args: list[str]
    children: list[Nginx] = field(default_factory=list)

    def all(self, name: str, *args: str) -> list[Nginx]:
        return [c for c in self.children if c.name == name and c.args[: len(args)] == list(args)]

    def one(self, name: str, *args: str) -> Nginx:
        found = self.all(name, *args)
        assert len(found) == 1, f"{self.name}: expected one {name} {args}, found {len(found)}"
        return found[0]


def parse_nginx(text: str) -> Nginx:
    # Good enough for this file: no quoted strings with ; { } or # in them.
    tokens = re.findall(r"[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    root = stack = [Nginx("main", [])]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].children.append(Nginx(words[0], words[1:]))
            words = []
        elif token == "{":
            block = Nginx(words[0], words[1:])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces in nginx.conf"
    return root[0]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


@dataclass
class Deploy:
    compose_text: str
    nginx_text: str
    dockerfile_text: str

    @property
    def raw(self) -> dict[str, Any]:
        """docker-compose.yml before interpolation (anchors and merges resolved)."""
        return yaml.safe_load(self.compose_text)

    def compose(self, env: Mapping[str, str] = VARIABLES) -> dict[str, Any]:
        """docker-compose.yml as compose runs it with ``env`` as the shell's variables."""
        return walk_strings(self.raw, lambda s: interpolate(s, env))

    @property
    def services(self) -> dict[str, Any]:
        return self.compose()["services"]

    @property
    def nginx(self) -> Nginx:
        return parse_nginx(self.nginx_text)

    @property
    def dockerfile(self) -> list[tuple[str, str]]:
        return dockerfile_instructions(self.dockerfile_text)


def real() -> Deploy:
    return Deploy(
        (ROOT / "docker-compose.yml").read_text(),
        (ROOT / "deploy" / "nginx.conf").read_text(),
        (ROOT / "Dockerfile").read_text(),
    )


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test must start with CMD: {test}"
    return " ".join(test[1:])


def serve_args(command: list[str]) -> Any:
    assert command[0] == "talkroom", command
    try:
        args = parser().parse_args(command[1:])
    except SystemExit:
        raise AssertionError(f"talkroom refuses {command}") from None
    assert args.command == "serve", command
    return args


def app_port(d: Deploy) -> int:
    port: int = serve_args(d.services["app"]["command"]).port
    return port


def app_settings(d: Deploy) -> Settings:
    """The Settings a replica builds from the environment compose gives it."""
    env = {k: str(v) for k, v in d.services["app"]["environment"].items()}
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings(_env_file=None)


# ---- What the deploy files promise ----------------------------------------------


def check_backing_services_report_health(d: Deploy) -> None:
    services = d.services
    assert "pg_isready" in healthcheck_command(services["postgres"])
    assert re.search(r"redis-cli\b.*\bping\b", healthcheck_command(services["redis"]))


def check_app_starts_once_backing_services_are_healthy(d: Deploy) -> None:
    depends = d.services["app"]["depends_on"]
    assert isinstance(depends, dict), "depends_on as a list only waits for a start, not health"
    for name in ("postgres", "redis"):
        assert depends[name]["condition"] == "service_healthy", name


def check_nginx_starts_once_the_app_is_healthy(d: Deploy) -> None:
    assert d.services["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"
    # The app's health is /healthz (503 while the database or Redis is down) on its port.
    probe = healthcheck_command(d.services["app"])
    assert f"http://127.0.0.1:{app_port(d)}/healthz" in probe, probe


def check_app_runs_as_scalable_replicas(d: Deploy) -> None:
    app = d.services["app"]
    assert app["deploy"]["replicas"] >= 2
    # A fixed container name or host port lets only one replica start.
    assert "container_name" not in app
    assert "ports" not in app, "replicas are reached through nginx, not a host port"


def check_required_variables_fail_fast(d: Deploy) -> None:
    refs = references(d.compose_text)
    unguarded = {name for name, kind in refs if kind is None}
    # An unguarded ${VAR} becomes "" when unset: a blank password or secret, silently.
    assert unguarded == set(), f"use ${{VAR:?message}} or ${{VAR:-default}}: {unguarded}"
    assert {name for name, kind in refs if kind == "?"} == REQUIRED
    for name in REQUIRED:
        for value in (None, ""):  # ":?" also refuses an empty value
            env = {k: v for k, v in VARIABLES.items() if k != name}
            if value is not None:
                env[name] = value
            try:
                d.compose(env)
            except MissingVariable as missing:
                assert missing.name == name
                assert name in missing.message, "the message should name what to set"
            else:
                raise AssertionError(f"compose runs with {name}={value!r}")


def check_app_environment_is_what_settings_read(d: Deploy) -> None:
    env = d.services["app"]["environment"]
    assert isinstance(env, dict)
    fields = {f"TALKROOM_{name.upper()}" for name in Settings.model_fields}
    # Settings ignore unknown variables, so a misspelt one would silently do nothing.
    unknown = {k for k in env if k.startswith("TALKROOM_")} - fields
    assert unknown == set(), f"not settings: {unknown}"
    settings = app_settings(d)
    assert settings.env == "production"
    assert settings.secret == VARIABLES["TALKROOM_SECRET_KEY"]
    assert settings.redis_url, "replicas reach each other only through Redis"


def check_database_url_points_at_the_postgres_service(d: Deploy) -> None:
    url = make_url(app_settings(d).database)
    postgres = d.services["postgres"]["environment"]
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"] == VARIABLES["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]


def check_redis_url_points_at_the_redis_service(d: Deploy) -> None:
    url = urlsplit(app_settings(d).redis_url or "")
    assert url.scheme == "redis" and url.hostname == "redis" and (url.port or 6379) == 6379


def check_every_replica_signs_with_the_same_secret(d: Deploy) -> None:
    # Replicas of one service share one environment; the secret must come from the
    # operator, not from a default in this file (public) or a per-container file
    # (each replica would generate its own and reject the others' cookies).
    raw_env = d.raw["services"]["app"]["environment"]
    assert references(raw_env["TALKROOM_SECRET_KEY"]) == [("TALKROOM_SECRET_KEY", "?")]
    assert "env_file" not in d.services["app"]
    talkroom = [s for s in d.services.values() if s.get("command", [None])[0] == "talkroom"]
    secrets = {s["environment"].get("TALKROOM_SECRET_KEY") for s in talkroom}
    assert secrets == {VARIABLES["TALKROOM_SECRET_KEY"]}, "every talkroom service, one secret"


def check_app_command_serves_on_all_interfaces(d: Deploy) -> None:
    args = serve_args(d.services["app"]["command"])
    assert args.host == "0.0.0.0", "127.0.0.1 inside a container is unreachable from nginx"


def check_nginx_runs_this_config(d: Deploy) -> None:
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in d.services["nginx"]["volumes"]


def check_nginx_listens_where_compose_publishes(d: Deploy) -> None:
    server = d.nginx.one("http").one("server")
    (listen,) = server.one("listen").args
    published = [str(p).split(":")[-1] for p in d.services["nginx"]["ports"]]
    assert listen in published, (listen, published)


def check_nginx_forwards_to_the_app_port(d: Deploy) -> None:
    http = d.nginx.one("http")
    location = http.one("server").one("location", "/")
    (target,) = location.one("proxy_pass").args
    upstream = http.one("upstream", urlsplit(target).netloc)
    servers = [s.args[0] for s in upstream.all("server")]
    assert servers == [f"app:{app_port(d)}"], servers


def check_nginx_upgrades_websockets(d: Deploy) -> None:
    http = d.nginx.one("http")
    location = http.one("server").one("location", "/")
    # HTTP/1.0 (nginx's default upstream protocol) has no Upgrade.
    assert location.one("proxy_http_version").args == ["1.1"]
    headers = {h.args[0].lower(): h.args[1] for h in location.all("proxy_set_header")}
    assert headers.get("upgrade") == "$http_upgrade"
    connection = headers.get("connection", "")
    if connection.startswith("$"):
        mapping = http.one("map", "$http_upgrade", connection)
        values = {m.name: m.args for m in mapping.children}
        assert values.get("default") == ["upgrade"], values
    else:
        assert connection.lower() == "upgrade", connection
    # The WebSocket Origin check compares the page's origin, port included, to Host.
    assert headers.get("host") == "$http_host"


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert m, value
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    return int(m[1]) * unit


def check_nginx_keeps_idle_sockets(d: Deploy) -> None:
    location = d.nginx.one("http").one("server").one("location", "/")
    defaults = Settings.model_fields
    # Between two pings a socket carries nothing; nginx must not call that idle.
    quiet = defaults["ws_ping_interval"].default + defaults["ws_ping_timeout"].default
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        assert seconds(location.one(name).args[0]) > quiet, name
    assert location.one("proxy_buffering").args == ["off"]


def check_nginx_hides_metrics(d: Deploy) -> None:
    metrics = d.nginx.one("http").one("server").one("location", "=", "/metrics")
    assert metrics.one("return").args == ["404"]


def check_image_runs_talkroom_serve_as_pid_1(d: Deploy) -> None:
    (cmd,) = [args for name, args in d.dockerfile if name == "CMD"]
    # Exec form: in shell form /bin/sh is PID 1 and SIGTERM never reaches talkroom,
    # so sockets are not closed with 1012 and browsers wait for the kill.
    assert cmd.startswith("["), "CMD must be a JSON list (exec form)"
    command = json.loads(cmd)
    args = serve_args(command)
    assert args.host == "0.0.0.0"
    assert args.port == app_port(d)
    exposed = {p for name, rest in d.dockerfile if name == "EXPOSE" for p in rest.split()}
    assert exposed == {str(args.port)}
    assert d.services["app"].get("stop_signal", "SIGTERM") == "SIGTERM"


def check_image_does_not_run_as_root(d: Deploy) -> None:
    instructions = d.dockerfile
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    # The app creates its data directory at start: the user must be able to.
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert re.search(rf"chown\s+{re.escape(users[-1])}\s+data\b", runs), runs


def check_image_python_meets_requires_python(d: Deploy) -> None:
    (base,) = [args for name, args in d.dockerfile if name == "FROM"]
    m = re.fullmatch(r"python:(\d+)\.(\d+)\S*", base)
    assert m, base
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.fullmatch(r">=(\d+)\.(\d+)", wanted)
    assert low, wanted
    assert (int(m[1]), int(m[2])) >= (int(low[1]), int(low[2]))


def check_image_holds_what_serve_needs(d: Deploy) -> None:
    copied: dict[str, str] = {}
    for name, args in d.dockerfile:
        if name == "COPY":
            *sources, target = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                copied[source] = target
    # `serve` migrates first, and app/db.py looks for alembic.ini and migrations/
    # beside app/: hence all three in one directory, and an editable install.
    assert {"app", "alembic.ini", "migrations"} <= copied.keys(), copied
    runs = " ".join(args for name, args in d.dockerfile if name == "RUN")
    assert re.search(r"pip install (?:\S+ )*-e \.", runs), runs


CHECKS = [value for name, value in sorted(globals().items()) if name.startswith("check_")]


# ---- The tests ------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_deploy_files_keep_their_promise(check: Callable[[Deploy], None]) -> None:
    check(real())


# Each check against a copy of the files with one thing broken that it guards:
# (check, file, text in the file, what it becomes).
BREAKAGES: list[tuple[Callable[[Deploy], None], str, str, str]] = [
    (check_backing_services_report_health, "compose", '"pg_isready', '"true'),
    (check_backing_services_report_health, "compose", '"redis-cli", "ping"', '"true"'),
    (
        check_app_starts_once_backing_services_are_healthy,
        "compose",
        "redis:\n        condition: service_healthy",
        "redis:\n        condition: service_started",
    ),
    (
        check_app_starts_once_backing_services_are_healthy,
        "compose",
        "    depends_on:\n      postgres:\n        condition: service_healthy\n"
        "      redis:\n        condition: service_healthy\n",
        "    depends_on: [postgres, redis]\n",
    ),
    (
        check_nginx_starts_once_the_app_is_healthy,
        "compose",
        "app:\n        condition: service_healthy",
        "app:\n        condition: service_started",
    ),
    (check_nginx_starts_once_the_app_is_healthy, "compose", "/healthz'", "/'"),
    (check_app_runs_as_scalable_replicas, "compose", "replicas: 2", "replicas: 1"),
    (
        check_app_runs_as_scalable_replicas,
        "compose",
        "    build: .\n",
        '    build: .\n    ports: ["8001:8000"]\n',
    ),
    (
        check_required_variables_fail_fast,
        "compose",
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}@",
        "${POSTGRES_PASSWORD}@",
    ),
    (
        check_required_variables_fail_fast,
        "compose",
        "${TALKROOM_SECRET_KEY:?set TALKROOM_SECRET_KEY",
        "${TALKROOM_SECRET_KEY?set TALKROOM_SECRET_KEY",
    ),
    (
        check_required_variables_fail_fast,
        "compose",
        "${TALKROOM_SECRET_KEY:?set TALKROOM_SECRET_KEY (signs",
        "${TALKROOM_SECRET_KEY:?set the key (signs",
    ),
    (
        check_app_environment_is_what_settings_read,
        "compose",
        "TALKROOM_REDIS_URL:",
        "TALKROOM_REDIS_URI:",
    ),
    (
        check_app_environment_is_what_settings_read,
        "compose",
        "TALKROOM_ENV: production",
        "TALKROOM_ENV: development",
    ),
    (check_database_url_points_at_the_postgres_service, "compose", "@postgres:", "@localhost:"),
    (check_database_url_points_at_the_postgres_service, "compose", "/talkroom\n", "/postgres\n"),
    (
        check_database_url_points_at_the_postgres_service,
        "compose",
        "postgresql+asyncpg://",
        "postgresql://",
    ),
    (
        check_redis_url_points_at_the_redis_service,
        "compose",
        "redis://redis:",
        "redis://localhost:",
    ),
    (
        check_every_replica_signs_with_the_same_secret,
        "compose",
        "TALKROOM_SECRET_KEY: ${TALKROOM_SECRET_KEY:?",
        "TALKROOM_SECRET_KEY: ${TALKROOM_SECRET_KEY:-dev-secret}${UNUSED:-",
    ),
    (
        check_every_replica_signs_with_the_same_secret,
        "compose",
        "    build: .\n",
        "    build: .\n    env_file: replica.env\n",
    ),
    (
        check_every_replica_signs_with_the_same_secret,
        "compose",
        "\nvolumes:\n",
        "\n  worker:\n    command: [talkroom, serve]\n    environment:\n"
        "      TALKROOM_SECRET_KEY: other\n\nvolumes:\n",
    ),
    (
        check_app_command_serves_on_all_interfaces,
        "compose",
        '"--host", "0.0.0.0"',
        '"--host", "127.0.0.1"',
    ),
    (check_nginx_runs_this_config, "compose", "./deploy/nginx.conf:", "./nginx.conf:"),
    (check_nginx_listens_where_compose_publishes, "nginx", "listen 80;", "listen 8080;"),
    (check_nginx_forwards_to_the_app_port, "nginx", "server app:8000;", "server app:80;"),
    (
        check_nginx_forwards_to_the_app_port,
        "nginx",
        "proxy_pass http://talkroom;",
        "proxy_pass http://app;",
    ),
    (check_nginx_upgrades_websockets, "nginx", "proxy_set_header Upgrade $http_upgrade;\n", ""),
    (
        check_nginx_upgrades_websockets,
        "nginx",
        "proxy_http_version 1.1;",
        "proxy_http_version 1.0;",
    ),
    (check_nginx_upgrades_websockets, "nginx", "default upgrade;", "default close;"),
    (
        check_nginx_upgrades_websockets,
        "nginx",
        "Connection $connection_upgrade;",
        "Connection close;",
    ),
    (check_nginx_upgrades_websockets, "nginx", "Host $http_host;", "Host $host;"),
    (check_nginx_keeps_idle_sockets, "nginx", "proxy_read_timeout 1h;", "proxy_read_timeout 30s;"),
    (check_nginx_keeps_idle_sockets, "nginx", "proxy_buffering off;", "proxy_buffering on;"),
    (check_nginx_hides_metrics, "nginx", "return 404;", "return 200;"),
    (
        check_image_runs_talkroom_serve_as_pid_1,
        "dockerfile",
        'CMD ["talkroom", "serve", "--host", "0.0.0.0", "--port", "8000"]',
        "CMD talkroom serve --host 0.0.0.0 --port 8000",
    ),
    (check_image_runs_talkroom_serve_as_pid_1, "dockerfile", '"serve"', '"migrate"'),
    (check_image_runs_talkroom_serve_as_pid_1, "dockerfile", "EXPOSE 8000", "EXPOSE 80"),
    (check_image_runs_talkroom_serve_as_pid_1, "dockerfile", '"8000"]', '"8080"]'),
    (check_image_does_not_run_as_root, "dockerfile", "USER talkroom", "USER root"),
    (check_image_does_not_run_as_root, "dockerfile", "chown talkroom data", "true"),
    (check_image_python_meets_requires_python, "dockerfile", "python:3.11-", "python:3.10-"),
    (check_image_holds_what_serve_needs, "dockerfile", "COPY migrations ./migrations\n", ""),
    (check_image_holds_what_serve_needs, "dockerfile", "pip install -e .", "pip install ."),
    (check_image_holds_what_serve_needs, "dockerfile", "COPY app ./app", "COPY src ./app"),
]


@pytest.mark.parametrize(
    ("check", "where", "old", "new"),
    BREAKAGES,
    ids=[f"{c.__name__.removeprefix('check_')}-{n}" for n, (c, *_) in enumerate(BREAKAGES)],
)
def test_each_check_can_fail(
    check: Callable[[Deploy], None], where: str, old: str, new: str
) -> None:
    files = real()
    attr = {"compose": "compose_text", "nginx": "nginx_text", "dockerfile": "dockerfile_text"}
    text = getattr(files, attr[where])
    assert text.count(old) >= 1, f"{old!r} is no longer in the {where} file: update this case"
    setattr(files, attr[where], text.replace(old, new))
    with pytest.raises(AssertionError):
        check(files)


def test_every_check_has_a_breakage() -> None:
    assert {c for c, *_ in BREAKAGES} == set(CHECKS)
