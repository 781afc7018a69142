"""The deployment files checked without a Docker engine: compose.yaml (structure, and Debian's
`docker-compose config` when installed), the Dockerfile's rules (and hadolint when installed),
the environment templates against Soundhive's own settings, the nginx template, the GitHub
workflow, and the helper scripts the containers run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ops_support import DEPLOY, NGINX_TEMPLATE, ROOT, deploy_script

yaml = pytest.importorskip("yaml")  # PyYAML: present with the test extra (moto → responses)

ENVIRONMENTS = ("dev", "staging", "prod")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE|CREDENTIAL", re.I)
LONG_RUNNING = ("api", "worker", "scheduler", "postgres", "redis", "minio", "nginx")
ONE_SHOTS = ("migrate", "minio-init", "tls-init")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def default_of(value: str) -> str:
    """``${NAME:-default}`` → ``default`` (what compose uses when NAME is unset)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def env_file(name: str) -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "env" / f"{name}.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{name}: bad line {line!r}"
            assert key not in values, f"{name}: {key} twice"
            values[key] = value
    return values


# -- compose.yaml ---------------------------------------------------------------------------
def test_compose_has_the_whole_system_with_health_checks_and_order() -> None:
    services = compose()["services"]
    assert set(LONG_RUNNING + ONE_SHOTS) <= set(services)
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert not check.get("disable") and check.get("test"), f"{name} needs a health check"
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name

    def needs(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[service]["depends_on"].items()}

    assert needs("migrate") == {"postgres": "service_healthy"}
    assert needs("minio-init") == {"minio": "service_healthy"}
    for app in ("api", "worker", "scheduler"):
        assert needs(app)["migrate"] == "service_completed_successfully", app
        assert needs(app)["postgres"] == needs(app)["redis"] == "service_healthy", app
    assert needs("nginx") == {
        "api": "service_healthy",
        "tls-init": "service_completed_successfully",
    }
    command = " ".join(services["api"]["command"])
    workers = re.search(r"--workers=(\S+)", command)
    assert workers and int(default_of(workers.group(1))) >= 2
    # only nginx may set X-Forwarded-For: the API trusts exactly the frontend subnet
    subnet = compose()["networks"]["frontend"]["ipam"]["config"][0]["subnet"]
    assert f"--forwarded-allow-ips={subnet}" in command
    assert services["nginx"]["networks"] == ["frontend"]
    assert "backend" not in services["nginx"]["networks"]


def test_compose_state_lives_in_named_volumes_and_nothing_internal_is_published() -> None:
    doc = compose()
    declared = set(doc["volumes"])
    used = set()
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert volume.endswith(":ro"), f"{name}: host mounts must be read-only"
            else:
                used.add(source)
                assert source in declared, f"{name}: volume {source} is not declared"
    assert declared == used
    mounts = {
        n: [v.split(":")[1] for v in s.get("volumes", [])] for n, s in doc["services"].items()
    }
    assert "/var/lib/postgresql/data" in mounts["postgres"]
    assert "/data" in mounts["redis"] and "/data" in mounts["minio"] and "/data" in mounts["api"]
    for name in ("api", "worker", "scheduler", "postgres", "redis"):
        assert "ports" not in doc["services"][name], f"{name} must not be published"
    for port in doc["services"]["minio"]["ports"]:
        assert port.startswith("127.0.0.1:"), "MinIO is published on loopback only"


def test_compose_holds_no_secrets_and_pins_images() -> None:
    raw = (ROOT / "compose.yaml").read_text()
    doc = compose()
    for name, service in doc["services"].items():
        env = service.get("environment", {})
        for key in env:
            assert not SECRET_NAME.search(key), f"{name}: {key} belongs in the env file"
        if name != "nginx":
            assert service["env_file"] == ["${SOUNDHIVE_ENV_FILE:-deploy/env/dev.env}"], name
        image = service.get("image", "")
        if not image.startswith("${"):
            repo, _, tag = image.rpartition(":")
            assert repo and tag and tag != "latest" and re.search(r"\d", tag), image
    assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*[\"']?[A-Za-z0-9]", raw)
    assert not re.search(r"AKIA[0-9A-Z]{16}", raw)
    assert "deploy/env/dev.env" in raw
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/env/dev.env"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, "real env files must be git-ignored"
    assert (
        subprocess.run(
            ["git", "check-ignore", "-q", "deploy/env/prod.env.example"], cwd=ROOT
        ).returncode
        == 1
    )


def test_nginx_gets_every_template_variable_and_the_apis_upload_limit() -> None:
    doc = compose()
    nginx_env = doc["services"]["nginx"]["environment"]
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", NGINX_TEMPLATE.read_text()))
    assert wanted == set(nginx_env), "compose must define exactly the template's variables"
    limit = nginx_env["SOUNDHIVE_MAX_UPLOAD_BYTES"]
    for app in ("api", "worker"):
        assert doc["services"][app]["environment"]["SOUNDHIVE_MAX_UPLOAD_BYTES"] == limit
    assert default_of(limit) == str(100 * 1024 * 1024)  # the API's default (SPEC §5)
    mount = next(v for v in doc["services"]["nginx"]["volumes"] if "templates" in v)
    assert mount == "./deploy/nginx/templates:/etc/nginx/templates:ro"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_docker_compose_config_accepts_the_file(environment: str) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian package) is not installed; .ci/run installs it")
    works = subprocess.run([tool, "version"], capture_output=True, text=True, timeout=60)
    if works.returncode != 0:  # e.g. Compose v1 on a Python without distutils
        pytest.skip(f"docker-compose does not run here: {works.stderr.strip()[-200:]}")
    result = subprocess.run(
        [tool, "-f", "compose.yaml", "config"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "SOUNDHIVE_ENV_FILE": f"deploy/env/{environment}.env.example",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    api = rendered["services"]["api"]
    assert api["environment"]["SOUNDHIVE_ENV"] == environment
    assert api["environment"]["SOUNDHIVE_MAX_UPLOAD_BYTES"] == "104857600"


# -- Dockerfile -----------------------------------------------------------------------------
def instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    steps = instructions()
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for kw, rest in steps
        if kw == "ARG" and "=" in rest
    }
    stages = [rest for kw, rest in steps if kw == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    names = []
    for stage in stages:
        image, _, name = stage.partition(" AS ")
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image), image
        names.append(name.strip())
    final = steps[max(i for i, (kw, _) in enumerate(steps) if kw == "FROM") :]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the final stage runs as root"
    keywords = [kw for kw, _ in final]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    for kw, rest in steps:
        assert kw != "ADD", "COPY, not ADD (no remote URLs or auto-extraction)"
        if kw == "COPY" and rest.startswith("--from="):
            assert rest.split()[0].removeprefix("--from=") in names
        if kw == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest
        if kw == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest and "rm -rf /var/lib/apt/lists" in rest
        if kw == "ENV":
            assert not SECRET_NAME.search(rest), rest
    for kw in ("ENTRYPOINT", "CMD"):
        value = next(rest for k, rest in final if k == kw)
        assert isinstance(json.loads(value), list), f"{kw} in exec form"
    health = next(rest for kw, rest in final if kw == "HEALTHCHECK")
    assert json.loads(health.split(" CMD ", 1)[1])[-1].endswith("/readyz")


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            glob = pattern.lstrip("!")
            regex = re.escape(glob).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
            if re.fullmatch(regex, path):
                verdict = not negated
        return verdict

    for kw, rest in instructions():
        if kw != "COPY" or rest.startswith("--from="):
            continue
        for source in rest.split()[:-1]:
            path = ROOT / source
            assert path.exists(), source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            kept = [f for f in files if "__pycache__" not in f.parts]
            assert kept and not any(ignored(str(f.relative_to(ROOT))) for f in kept), source
    for secret in (".env", ".venv/bin/python", ".soundhive/secret.key", "deploy/env/prod.env"):
        assert ignored(secret), f"{secret} must not reach the build context"


def test_hadolint_when_available() -> None:
    tool = shutil.which("hadolint")
    if tool is None:
        pytest.skip(
            "hadolint is not installed (not packaged by Debian; the GitHub workflow runs it)"
        )
    result = subprocess.run([tool, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- environment templates --------------------------------------------------------------------
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_templates_are_valid_settings(environment: str) -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    values = env_file(environment)
    assert values["SOUNDHIVE_ENV"] == environment
    fields = {
        key.removeprefix("SOUNDHIVE_").lower(): value
        for key, value in values.items()
        if key.startswith("SOUNDHIVE_")
    }
    if environment == "dev":
        for key, value in values.items():  # throwaway values only, and marked as such
            if SECRET_NAME.search(key) and key != "AWS_ACCESS_KEY_ID":  # that one is a user name
                assert value == "" or value.startswith("dev-only-"), key
        assert "dev-only-postgres-password" in values["SOUNDHIVE_DATABASE_URL"]
    else:
        for key, value in values.items():
            if SECRET_NAME.search(key) or key in ("SOUNDHIVE_REDIS_URL", "SOUNDHIVE_BROKER_URL"):
                assert value == "", f"{environment}: {key} must come from SSM, not the template"
        assert "What differs" in (DEPLOY / "env" / f"{environment}.env.example").read_text()
        assert "dev-auth-issuer" in values["SOUNDHIVE_SKILLS_DISABLED"]
        assert values["SOUNDHIVE_STORAGE"] == "s3" and "SOUNDHIVE_S3_ENDPOINT_URL" not in values
        assert values["SOUNDHIVE_PUBLIC_URL"].startswith("https://")
        assert "AWS_SECRET_ACCESS_KEY" not in values, "instance roles, not keys"
    filled = dict(fields)
    for key, value in filled.items():
        if value == "" and key in ("secret_key", "redis_url"):
            filled[key] = "x" * 48 if key == "secret_key" else "rediss://:token@cache:6379/0"
    settings = Settings(_env_file=None, **filled)  # type: ignore[call-arg]
    assert settings.env == environment
    assert "*" not in (settings.cors_origins or [])
    if environment == "prod":
        with pytest.raises(ValidationError, match="SOUNDHIVE_SECRET_KEY"):
            Settings(_env_file=None, **{**filled, "secret_key": ""})  # type: ignore[call-arg]


# -- nginx template, workflow, scripts ------------------------------------------------------
def test_nginx_template_static_rules() -> None:
    text = NGINX_TEMPLATE.read_text()

    def block(opening: str) -> str:
        found = re.search(re.escape(opening) + r" \{(.*?)\n    \}", text, re.S)
        assert found, opening
        return found.group(1)

    sse = block("location ~ ^/api/v1/(tracks/[^/]+/events|notifications/stream)$")
    assert "proxy_buffering off;" in sse and "proxy_read_timeout 1h;" in sse
    storage = block("location /storage/")
    assert "client_max_body_size ${SOUNDHIVE_MAX_UPLOAD_BYTES};" in storage
    assert "proxy_request_buffering off;" in storage
    assert "server_tokens off;" in text
    assert "text/event-stream" not in re.search(r"gzip_types([^;]*);", text).group(1)  # type: ignore[union-attr]
    log_format = re.search(r"log_format soundhive_json(.*?);\n", text, re.S).group(1)  # type: ignore[union-attr]
    assert "$uri" in log_format and "$request_uri" not in log_format and "$args" not in log_format
    plain, tls = text.split("server {")[1:3]
    assert "Strict-Transport-Security" not in plain and "Strict-Transport-Security" in tls


def test_github_workflow_runs_the_ci_command_on_pull_requests() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = doc.get("on") or doc.get(True)  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    job = doc["jobs"]["test"]
    images = {name: spec["image"] for name, spec in job["services"].items()}
    assert images["postgres"].startswith("postgres:") and images["redis"].startswith("redis:")
    assert "rabbitmq" in images
    assert job["services"]["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    runs = [step.get("run", "") for step in job["steps"]]
    assert "bash .ci/run" in runs
    ci_run = (ROOT / ".ci" / "run").read_text()
    for key in ("SOUNDHIVE_TEST_DATABASE_URL", "SOUNDHIVE_TEST_REDIS_URL"):
        exported = re.search(rf'export {key}="([^"]+)"', ci_run)
        assert exported and job["env"][key] == exported.group(1), key
    assert "python3 run.py lint" in ci_run and "python3 run.py test" in ci_run
    container = " ".join(s.get("run", "") for s in doc["jobs"]["container"]["steps"])
    assert "docker build -f deploy/Dockerfile" in container and "compose" in container


def test_healthcheck_script_reports_http_and_outbox_lag(
    live_server: Any,
    soundhive_env: dict[str, str],
    soundhive_services: Any,
    clean_state: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.music_helpers import sql

    check = deploy_script("healthcheck")
    assert check.main(["http", f"{live_server.url}/readyz"]) == 0
    assert check.main(["--timeout", "1", "http", f"{live_server.url}/nope"]) == 1
    assert "404" in capsys.readouterr().out
    monkeypatch.setenv("SOUNDHIVE_DATABASE_URL", soundhive_env["SOUNDHIVE_DATABASE_URL"])
    assert check.main(["outbox", "--max-age", "60"]) == 0
    sql(
        soundhive_services,
        "INSERT INTO core_outbox (id, type, payload, occurred_at) "
        "VALUES (gen_random_uuid(), 'ops.test', '{}', now() - interval '10 minutes')",
    )
    assert check.main(["outbox", "--max-age", "60"]) == 1
    assert "oldest unrelayed event: 600 s" in capsys.readouterr().out


def test_selfsigned_certificate_is_made_once(tmp_path: Path) -> None:
    from cryptography import x509

    script = deploy_script("selfsigned_cert")
    assert script.write_certificate(tmp_path, "api.test", 5) is True
    first = (tmp_path / "fullchain.pem").read_bytes()
    assert script.write_certificate(tmp_path, "other", 5) is False  # a real cert is never replaced
    assert (tmp_path / "fullchain.pem").read_bytes() == first
    cert = x509.load_pem_x509_certificate(first)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "api.test" in names.get_values_for_type(x509.DNSName)
    assert (tmp_path / "privkey.pem").stat().st_mode & 0o777 == 0o600


def test_bucket_script_configures_versioning_and_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.server")
    import boto3

    from core.embedded import free_port

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for key, value in {
            "SOUNDHIVE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "SOUNDHIVE_S3_BUCKET": "drill-media",
            "SOUNDHIVE_S3_REGION": "us-east-1",
            "SOUNDHIVE_CORS_ORIGINS": "https://app.example.com",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }.items():
            monkeypatch.setenv(key, value)
        script = deploy_script("create_bucket")
        assert script.main(["--noncurrent-days", "7"]) == 0
        assert script.main([]) == 0  # idempotent
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        assert s3.get_bucket_versioning(Bucket="drill-media")["Status"] == "Enabled"
        rule = s3.get_bucket_lifecycle_configuration(Bucket="drill-media")["Rules"][0]
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
        assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
        cors = s3.get_bucket_cors(Bucket="drill-media")["CORSRules"][0]
        assert cors["AllowedOrigins"] == ["https://app.example.com"]
    finally:
        server.stop()
