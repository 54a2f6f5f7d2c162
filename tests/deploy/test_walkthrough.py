"""README's "Operating tickwatch": the blocks that need no Docker run in a copy of the
repository, and what the Docker steps name (services, commands, files, ports) exists."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from fnmatch import fnmatch
from glob import glob
from pathlib import Path

import pytest

from streams.cli import build_parser
from tests.deploy.compose_checks import (
    load_compose,
    published_ports,
    read_env_file,
    schema_problems,
)

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Operating tickwatch"
MARKER = "<!-- walkthrough:no-docker -->"
#: Placeholders the lead fills with the metric and alert tables.
PLACEHOLDERS = ("<!-- metrics table: lead -->", "<!-- alerts table: lead -->")
PASSWORDS = ("REDIS_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD")


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n{SECTION}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end > 0 else None]


def no_docker_blocks() -> list[str]:
    """The shell blocks right after a walkthrough:no-docker marker, in order."""
    pattern = re.escape(MARKER) + r"\n```(?:sh|bash|console)\n(.*?)```"
    return re.findall(pattern, section(), flags=re.S)


def repository_copy(into: Path) -> Path:
    """The files a clone would have (tracked, and new ones not ignored), and this
    interpreter's environment as the copy's .venv, as `make test` leaves it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = into / "repo"
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the worktree is skipped
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return copy


def run_block(block: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWATCH_")}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository after the README's no-Docker blocks, each asserted to pass."""
    blocks = no_docker_blocks()
    assert len(blocks) >= 2, f"expected the .env and the check blocks after {MARKER}"
    copy = repository_copy(tmp_path_factory.mktemp("walkthrough"))
    for block in blocks:
        done = run_block(block, copy)
        assert done.returncode == 0, f"{block}\nexit {done.returncode}:\n{done.stdout}{done.stderr}"
    return copy


@pytest.mark.slow
def test_the_env_block_makes_a_private_env_with_new_passwords(walked: Path) -> None:
    env_file = walked / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env, example = read_env_file(env_file), read_env_file(walked / ".env.example")
    assert env.keys() == example.keys()
    for name in PASSWORDS:
        # New, and fit for a URL (redis://:PASSWORD@redis...) as .env.example asks.
        assert env[name] != example[name], name
        assert re.fullmatch(r"[0-9a-f]{32,}", env[name]), name


@pytest.mark.slow
def test_compose_accepts_the_env_the_walkthrough_made(walked: Path) -> None:
    env = read_env_file(walked / ".env")
    compose = load_compose(walked / "docker-compose.yml", env)
    assert schema_problems(compose) == []
    url = compose.services["worker"]["environment"]["TICKWATCH_REDIS_URL"]
    assert url == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0"


@pytest.mark.slow
def test_the_check_block_fails_on_a_broken_compose_file(walked: Path) -> None:
    # The same commands, on a compose file with a misspelt key: the block must not pass.
    check = next(b for b in no_docker_blocks() if "check-jsonschema" in b)
    compose = walked / "docker-compose.yml"
    text = compose.read_text()
    try:
        compose.write_text(text.replace("    healthcheck:", "    helthcheck:", 1))
        done = run_block(check, walked)
    finally:
        compose.write_text(text)
    assert done.returncode != 0
    assert "helthcheck" in done.stdout + done.stderr


def test_the_lead_has_places_for_the_metric_and_alert_tables() -> None:
    text = section()
    for placeholder in PLACEHOLDERS:
        # Filled by the lead: either the placeholder or a table after its heading.
        heading = "### Metrics" if "metrics" in placeholder else "### Operator alerts"
        assert placeholder in text or heading in text


def docker_compose_commands() -> list[list[str]]:
    """Every `docker compose ...` command of the section, in blocks and inline."""
    commands = []
    for line in re.findall(r"docker compose [^`\n#]+", section()):
        commands.append(shlex.split(line.strip())[2:])
    return commands


def test_the_docker_steps_name_services_of_the_stack() -> None:
    services = load_compose(
        ROOT / "docker-compose.yml", read_env_file(ROOT / ".env.example")
    ).services
    named = []
    for command in docker_compose_commands():
        words = [w for w in command if not w.startswith("-")]
        verb = words[0]
        if verb in ("run", "exec"):
            named.append(words[1])
        elif verb in ("logs", "stop", "restart", "kill"):
            # kill -s HUP prometheus: HUP is the signal's value.
            named.extend(w for w in words[1:] if w != "HUP")
    assert named, "the section names no service"
    for name in named:
        assert name in services, f"README: docker compose ... {name}: no such service"


def test_the_tickwatch_commands_it_runs_are_valid() -> None:
    parser = build_parser()
    runs = [
        c
        for c in docker_compose_commands()
        if c[:3] == ["run", "--rm", "tickwatch"] and "..." not in c  # "...": any command
    ]
    assert len(runs) >= 4  # users add, seed, replay, tail
    for command in runs:
        args = command[3:]
        parser.parse_args(args)  # exits (a failed test) on a bad command or option
        for word in args:
            if word.startswith("/app/"):
                # The Dockerfile copies the repository's streams/ to /app/streams.
                assert (ROOT / word.removeprefix("/app/")).is_file(), word


def test_the_addresses_it_gives_are_published_by_the_stack() -> None:
    services = load_compose(
        ROOT / "docker-compose.yml", read_env_file(ROOT / ".env.example")
    ).services
    published = {p.host_port for name, s in services.items() for p in published_ports(name, s)}
    ports = {int(p) for p in re.findall(r"http://localhost:(\d+)", section())}
    assert {3000, 9090, 9093, 8080} <= ports
    assert ports <= published, ports - published


def test_deploy_readme_says_what_each_file_is_for() -> None:
    text = (ROOT / "deploy" / "README.md").read_text()
    named = re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in listed:
        name = path.removeprefix("deploy/")
        if name != "README.md":
            assert any(fnmatch(name, pattern) for pattern in named), f"deploy/README.md: {name}"
    for pattern in named:
        assert glob(pattern, root_dir=ROOT / "deploy") or (ROOT / pattern).exists(), pattern
