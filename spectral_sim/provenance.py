"""Provenance: where and how a result was made (package and JAX versions, the git commit of the
checkout the package runs from, devices and process count, x64 and matmul precision, seed, UTC
time, Python version), recorded in every sweep's dataset attrs and every saved report."""

import datetime
import os
import pathlib
import platform
import subprocess
from typing import Any

import jax

__all__ = ["VERSION", "git_commit", "package_version", "provenance"]

VERSION = "0.1.0"
"""spectral_sim's version (`spectral_sim.__version__`; pyproject.toml reads it from here)."""

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def package_version() -> str:
    """spectral_sim's version, `VERSION`."""
    return VERSION


def _git(*args: str) -> str | None:
    """stdout of a git command run in the package's directory, or None if git fails or is absent."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            # `git status` may otherwise take the index lock while someone else commits.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit() -> str:
    """HEAD of the checkout the package runs from, "+dirty" if it has changes, else "unknown".

    "unknown" also when the package is not tracked there (e.g. installed into a virtual
    environment that happens to sit inside some other checkout).
    """
    commit = _git("rev-parse", "HEAD")
    if not commit or _git("ls-files", "--error-unmatch", "__init__.py") is None:
        return "unknown"
    return commit + ("+dirty" if _git("status", "--porcelain") else "")


def _device_names() -> list[str]:
    names = []
    for device in jax.devices():
        name = f"{device.platform}:{device.id}"
        kind = str(getattr(device, "device_kind", device.platform))
        names.append(name if kind.lower() == device.platform else f"{name} ({kind})")
    return names


def provenance(seed: int) -> dict[str, Any]:
    """Where and how a result was made: package and JAX versions, git commit, devices (and
    process count), x64, seed, UTC time, Python version."""
    return {
        "package_version": package_version(),
        "git_commit": git_commit(),
        "jax_version": jax.__version__,
        "devices": _device_names(),
        "process_count": jax.process_count(),
        "x64": bool(jax.config.jax_enable_x64),  # pyright: ignore[reportAttributeAccessIssue]
        "matmul_precision": str(jax.config.jax_default_matmul_precision),  # pyright: ignore
        "seed": int(seed),
        "utc_time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python_version": platform.python_version(),
    }
