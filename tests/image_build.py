"""The Dockerfile's build replayed here, where no Docker engine runs.

Each stage's COPY lands in a folder that stands for the image's file system, ENV
is kept per stage, and the build stage's RUN commands (uv sync from uv.lock) run
for real, with this machine's uv and Python in place of the image's. What comes out
is the image's /opt/venv and /srv: its locked, non-editable install beside
alembic.ini, migrations and scripts, without the source tree, .env or tests. The
image's commands then run against exactly that.
"""

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

BUILD_TIMEOUT = 900
# .dockerignore's entries that matter for what the COPY lines take.
IGNORED = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")


@dataclass
class Image:
    root: Path  # stands for the image's "/"
    workdir: Path = field(default=Path("/"))
    environment: dict[str, str] = field(default_factory=dict)  # the runtime stage's ENV

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    @property
    def python(self) -> Path:
        return self.path("/opt/venv/bin/python")

    @property
    def cwd(self) -> Path:
        return self.path(str(self.workdir))


def _environment(value: str, root: Path) -> dict[str, str]:
    """One ENV instruction; absolute paths point into the image's folder."""
    pairs = (pair.partition("=") for pair in shlex.split(value))
    return {
        name: str(root / setting.lstrip("/")) if setting.startswith("/") else setting
        for name, _, setting in pairs
        if name != "PATH"  # the commands are run by absolute path instead
    }


def _copy(project: Path, sources: list[str], target: Path) -> None:
    for source in sources:
        origin = project / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=IGNORED, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)


def build_image(project: Path, root: Path) -> Image:
    """Replay the Dockerfile of `project` into `root`; the build's RUNs must succeed."""
    image = Image(root)
    stage, workdir, environment = "", Path("/"), dict[str, str]()
    for item in DockerfileParser(path=str(project / "Dockerfile")).structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            stage, workdir, environment = value.split()[-1], Path("/"), {}
        elif instruction == "ENV":
            environment |= _environment(value, root)
        elif instruction == "WORKDIR":
            workdir = Path(value)
            image.path(value).mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            arguments = shlex.split(value)
            if arguments[0].startswith("--from="):
                continue  # uv's binary (this machine's uv instead), or the build's /opt/venv
            *sources, target = arguments
            _copy(project, sources, image.path(str(workdir / target)))
        elif instruction == "RUN" and stage == "build":
            argv = shlex.split(value)
            assert argv[0] == "uv", f"the build stage runs uv only; replay this too: {value}"
            built = subprocess.run(
                [sys.executable, "-m", "uv", *argv[1:]],
                cwd=image.path(str(workdir)),
                # This machine's Python stands for the image's /usr/local/bin/python.
                env={**os.environ, **environment, "UV_PYTHON": sys.executable},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            assert built.returncode == 0, f"RUN {value}:\n{built.stderr}"
    image.workdir, image.environment = workdir, environment
    return image
