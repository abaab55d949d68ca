"""The asip-locate command, in-process (main(argv)) and as an installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asip_locate.cli import main

DEMO = Path(__file__).parent.parent / "examples" / "demo.zone"


def test_plain_lookup_lists_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--zone", str(DEMO), "--seed", "1", "sip:alice@example.test"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 9
    assert out[0].split()[:3] == ["1.", "tls", "[::1]:5061"]
    assert "tls_name=example.test" in out[0]


def test_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--zone", str(DEMO), "--json", "--ipv4", "--transport", "udp", "sip:example.test"])
    targets = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [set(t) for t in targets] == [
        {"transport", "address", "port", "host", "tls_name", "ttl"}
    ] * 2
    assert [(t["transport"], t["address"], t["port"]) for t in targets] == [
        ("udp", "127.0.0.11", 5060),
        ("udp", "127.0.0.12", 5060),
    ]


def test_explain_draws_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--zone", str(DEMO), "--explain", "--ipv4", "sips:example.test"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "└─ example.test NAPTR"
    assert "_sips._tcp.example.test SRV" in out
    assert "#1 tls 127.0.0.1" in out


def test_no_targets_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--zone", str(DEMO), "--timeout", "0.5", "sip:gone.example.test"]) == 1
    assert "no targets for sip:gone.example.test" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["sip:bad host"], ["tel:123456"], []])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err


def test_installed_script_runs_the_demo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asip_locate", "--zone", str(DEMO), "sip:example.test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sip1.example.test" in result.stdout
