"""The tickwatch image, checked without building it: the Dockerfile copies every package the
install needs, .dockerignore keeps secrets out and nothing needed, the paths compose gives
the image exist in it."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from tests.deploy.compose_checks import load_compose, read_env_file

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = PurePosixPath("/app")


def copies() -> dict[str, PurePosixPath]:
    """The Dockerfile's COPY lines: source -> where it lands in the image."""
    found: dict[str, PurePosixPath] = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, destination = line.split()[1:]
            for source in sources:
                # A folder's contents land in the destination; a file lands in it when
                # it is a folder (ends in /), else becomes it.
                target = WORKDIR / destination
                into = destination.endswith("/") and not (ROOT / source).is_dir()
                found[source] = target / source if into else target
    return found


def ignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def image_path(path: str) -> Path | None:
    """The repository file that lands at `path` in the image, if one does."""
    for source, target in copies().items():
        inside = PurePosixPath(path)
        if inside == target or target in inside.parents:
            return ROOT / source / inside.relative_to(target)
    return None


def test_the_image_copies_every_package_it_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    copied = copies()
    for package in setuptools["packages"]:
        top = package.split(".")[0]
        assert top in copied, f"the Dockerfile does not COPY {top}/ (package {package})"
    for needed in ("pyproject.toml", "constraints.txt", project["project"]["readme"]):
        assert needed in copied, needed


def test_dockerignore_keeps_secrets_out_and_what_is_copied_in() -> None:
    patterns = ignored()
    assert ".env" in patterns
    for source in copies():
        assert (ROOT / source).exists(), source
        assert not any(fnmatch(source, p) for p in patterns), f".dockerignore drops {source}"


def test_the_market_files_compose_names_are_in_the_image() -> None:
    compose = load_compose(ROOT / "docker-compose.yml", read_env_file(ROOT / ".env.example"))
    for name, service in compose.services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_FILE") and str(value).startswith("/"):
                local = image_path(str(value))
                assert local is not None and local.is_file(), f"{name}: {key}={value}"


def test_image_path_maps_copied_folders_only() -> None:
    assert image_path("/app/streams/data/demo_ticks.csv") == ROOT / "streams/data/demo_ticks.csv"
    assert image_path("/app/tests/conftest.py") is None
    assert image_path("/etc/passwd") is None


def test_the_readme_and_compose_replay_files_the_image_has() -> None:
    text = (ROOT / "README.md").read_text() + (ROOT / "docker-compose.yml").read_text()
    for path in set(re.findall(r"(/app/[\w./-]+\.(?:csv|yaml|jsonl))", text)):
        local = image_path(path)
        assert local is not None and local.is_file(), path


def test_the_user_may_write_its_working_directory() -> None:
    # A worker's Faust app makes <app id>-data in the working directory as it starts;
    # in a directory the image's user cannot write, the worker cannot start.
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    workdir = [line.split()[1] for line in lines if line.startswith("WORKDIR ")][-1]
    if user not in ("root", "0"):
        text = "\n".join(lines)
        assert re.search(rf"mkdir (-p )?{re.escape(workdir)}\b", text), workdir
        assert re.search(rf"chown {user}(:\S+)? {re.escape(workdir)}\b", text), workdir
