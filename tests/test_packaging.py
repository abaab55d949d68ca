"""The release artefacts: what the sdist holds, and a wheel installed in a fresh venv.

One ``python -m build`` (the sdist, then the wheel built from it) serves every test; the
wheel goes into a new venv, non-editable, with its dependencies from pip's configured
index, and runs README's example and the CLI's offline demo from outside the checkout.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

import pytest

import asip_locate
from asip_locate.testing import ZoneServer

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.zone"
TIMEOUT = 300

pytestmark = pytest.mark.skipif(
    not (ROOT / "pyproject.toml").is_file(), reason="needs the source tree"
)


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command outside the checkout (unless ``cwd``), with no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd or Path(tempfile.gettempdir()),
        env=env,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture(scope="module")
def env(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no extras yet); returns its bin directory."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    bin_dir = home / "bin"
    (wheel,) = dist.glob("*.whl")
    installed = run(bin_dir / "python", "-m", "pip", "install", "-q", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return bin_dir


def test_sdist_holds_only_what_it_should(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    tops = {name.split("/")[0] for name in names}
    assert tops == {
        "asip_locate",
        "tests",
        "examples",
        "benchmarks",
        "docs",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "pyproject.toml",
        "tox.ini",
        "mkdocs.yml",
        "hatch_build.py",
        "PKG-INFO",
    }, tops
    for name in names:
        assert not name.endswith((".png", ".pyc")), name
        assert "__pycache__" not in name, name
        assert not name.startswith((".ci", ".git")), name
    assert "asip_locate/py.typed" in names
    assert "benchmarks/RESULTS.md" in names


def test_wheel_metadata(dist: Path, env: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    assert f"-{asip_locate.__version__}-" in wheel.name
    shown = run(env / "python", "-m", "pip", "show", "asip-locate")
    assert f"Version: {asip_locate.__version__}" in shown.stdout
    assert re.search(r"Requires: .*aiodns", shown.stdout)
    assert "dnslib" not in shown.stdout.split("Requires:")[1].splitlines()[0]


def test_without_the_testing_extra_it_says_what_to_install(env: Path, tmp_path: Path) -> None:
    hint = "pip install 'asip-locate[testing]'"
    if run(env / "python", "-c", "import dnslib").returncode == 0:
        pytest.skip("dnslib already installed in the venv (test order)")
    imported = run(env / "python", "-c", "import asip_locate.testing", cwd=tmp_path)
    assert imported.returncode == 1
    assert hint in imported.stderr
    demo = run(env / "asip-locate", "--zone", DEMO, "sip:alice@example.test", cwd=tmp_path)
    assert demo.returncode == 2
    assert demo.stderr == f"asip-locate: --zone needs dnslib: {hint}\n"


@pytest.fixture(scope="module")
def testing_env(env: Path, dist: Path) -> Path:
    """The same venv with the ``testing`` extra added (what pip install '...[testing]' does)."""
    (wheel,) = dist.glob("*.whl")
    installed = run(env / "python", "-m", "pip", "install", "-q", f"{wheel}[testing]")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env


def test_installed_cli_runs_the_offline_demo(testing_env: Path, tmp_path: Path) -> None:
    code = "import asip_locate; print(asip_locate.__file__)"
    where = run(testing_env / "python", "-c", code, cwd=tmp_path)
    assert "site-packages" in where.stdout, where.stdout  # the wheel, not the checkout
    demo = run(
        testing_env / "asip-locate",
        "--zone",
        DEMO,
        "sip:alice@example.test",
        "--explain",
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.splitlines()[0] == "sip:alice@example.test"
    assert "#1 tls" in demo.stdout
    version = run(testing_env / "asip-locate", "--version", cwd=tmp_path)
    assert version.stdout == f"asip-locate {asip_locate.__version__}\n"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "README has no Python example"
    return str(blocks[0])


def test_readme_example_is_short() -> None:
    assert len(readme_example().strip().splitlines()) <= 20


async def test_installed_wheel_runs_the_readme_example(testing_env: Path, tmp_path: Path) -> None:
    # README's example as written, pointed at a zone on loopback, with a try_send that
    # records the target and succeeds.
    example = readme_example()
    for old in ('LocateOptions(transports=("tls", "tcp", "udp"))', '"sip:alice@example.com"'):
        assert old in example, old
    example = example.replace(
        'LocateOptions(transports=("tls", "tcp", "udp"))',
        'LocateOptions(transports=("tls", "tcp", "udp"), nameservers=(NAMESERVER,))',
    ).replace('"sip:alice@example.com"', '"sip:alice@example.test"')
    prelude = (
        "import os\n"
        "NAMESERVER = os.environ['NAMESERVER']\n"
        "async def try_send(target):\n"
        "    print('sent to', target)\n"
        "    return True\n"
    )
    script = tmp_path / "readme_example.py"
    script.write_text(prelude + example)
    async with ZoneServer(DEMO.read_text()) as server:
        process = await asyncio.create_subprocess_exec(
            str(testing_env / "python"),
            str(script),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NAMESERVER": server.address, "PYTHONPATH": ""},
        )
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(r"sent to tls \S+:5061 \(sip[12]\.example\.test\)", lines[0]), lines
