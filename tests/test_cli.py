"""The asip-locate command, in-process (main(argv)) and as an installed script."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import asip_locate
from asip_locate import Answer, Query, RType, SrvRecord, Status, Target, Transport
from asip_locate.cli import explain, main, nameserver

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "examples" / "demo.zone"
ZONE = ["--zone", str(DEMO)]


def run(argv: list[str]) -> int:
    """main(argv), with argparse's SystemExit turned into its exit status."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asip_locate", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def test_plain_lookup_lists_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*ZONE, "--seed", "1", "sip:alice@example.test"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 9
    assert out[0].split()[:3] == ["1.", "tls", "[::1]:5061"]
    assert "tls_name=example.test" in out[0]


def test_lookup_subcommand_is_the_plain_lookup(capsys: pytest.CaptureFixture[str]) -> None:
    def without_ttl(text: str) -> str:  # remaining TTLs may tick down between the runs
        return re.sub(r"ttl=\d+", "ttl=N", text)

    assert main([*ZONE, "--seed", "1", "sip:alice@example.test"]) == 0
    plain = capsys.readouterr().out
    assert "ttl=" in plain
    assert main(["lookup", *ZONE, "--seed", "1", "sip:alice@example.test"]) == 0
    assert without_ttl(capsys.readouterr().out) == without_ttl(plain)


def test_help_names_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "lookup" in out
    assert "ping" in out
    assert run(["ping", "--help"]) == 0
    assert "--dns-timeout" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"asip-locate {asip_locate.__version__}"


# --- --json -----------------------------------------------------------------------------


def test_json_envelope(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*ZONE, "--json", "--ipv4", "--transport", "udp", "sip:example.test"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(document) == {"version", "uri", "targets", "attempts"}
    assert document["version"] == 1
    assert document["uri"] == "sip:example.test"
    targets = document["targets"]
    assert [set(t) for t in targets] == [
        {"transport", "address", "port", "host", "tls_name", "ttl", "stale", "path"}
    ] * 2
    assert [(t["transport"], t["address"], t["port"], t["stale"]) for t in targets] == [
        ("udp", "127.0.0.11", 5060, False),
        ("udp", "127.0.0.12", 5060, False),
    ]
    assert targets[0]["path"] == [
        {"name": "example.test", "type": "NAPTR"},
        {"name": "_sip._udp.example.test", "type": "SRV"},
        {"name": "sip1.example.test", "type": "A"},
    ]
    statuses = {(a["name"], a["type"]): a["status"] for a in document["attempts"]}
    assert statuses[("example.test", "NAPTR")] == "NOERROR"
    assert statuses[("sip2.example.test", "A")] == "NOERROR"


def test_json_explain_keeps_the_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*ZONE, "--json", "--explain", "--ipv4", "--transport", "udp", "sip:example.test"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document["explain"]) == {"discarded", "demoted"}
    whys = {(d["record"], d["why"]) for d in document["explain"]["discarded"]}
    assert any("SIPS+D2T" in record for record, _ in whys), whys


def test_json_errors_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ZONE, "--json", "--timeout", "0.5", "sip:gone.example.test"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["version"] == 1
    assert document["uri"] == "sip:gone.example.test"
    assert document["error"]["type"] == "NoTargetsError"
    assert "no targets for sip:gone.example.test" in document["error"]["message"]
    assert any(a["status"] == "NXDOMAIN" for a in document["attempts"])
    assert main(["--json", "sip:bad host"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["type"] == "InvalidUriError"


def test_ping_json_errors_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ping", "--json", "sip:bad host"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "version": 1,
        "uri": "sip:bad host",
        "error": {"type": "InvalidUriError", "message": document["error"]["message"]},
    }


# --- --explain --------------------------------------------------------------------------


def test_explain_draws_the_tree_from_a_root(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ZONE, "--explain", "--ipv4", "sips:example.test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sips:example.test"
    assert lines[1].startswith("└─ example.test NAPTR: 3 record(s)")
    assert any("_sips._tcp.example.test SRV: 2 record(s)" in line for line in lines)
    assert any("#1 tls 127.0.0.1" in line for line in lines)


def test_explain_answers_why_no_tls(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*ZONE, "--explain", "--ipv4", "--transport", "udp", "sip:example.test"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (sips,) = [line for line in out.splitlines() if "SIPS+D2T" in line]
    assert "(not used: " in sips
    assert '10 50 "s" "SIPS+D2T" "" _sips._tcp.example.test' in sips


def test_explain_shows_branches_that_found_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = tmp_path / "partial.zone"
    zone.write_text(
        "$TTL 300\n"
        "example.test. IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 60\n"
        'example.test. IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.\n'
        'example.test. IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.example.test.\n'
        "_sip._udp.example.test. IN SRV 10 0 5060 sip.example.test.\n"
        "_sip._udp.example.test. IN SRV 10 0 0 zero.example.test.\n"
        "sip.example.test. IN A 127.0.0.11\n"
    )
    assert main(["--zone", str(zone), "--explain", "--ipv4", "sip:example.test"]) == 0
    out = capsys.readouterr().out
    assert "_sips._tcp.example.test SRV: NXDOMAIN" in out  # the TLS branch, empty
    assert "SRV 10 0 0 zero.example.test  (not used: port 0)" in out
    assert "#1 udp 127.0.0.11:5060" in out


def test_explain_without_targets_prints_the_tree_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*ZONE, "--explain", "--timeout", "0.5", "sip:gone.example.test"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "sip:gone.example.test"
    assert "gone.example.test NAPTR: NXDOMAIN" in captured.out
    assert "no targets for sip:gone.example.test" in captured.err


def test_unreachable_nameserver_is_not_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on this port: c-ares sees ICMP port unreachable (connection refused).
    argv = ["--json", "--nameserver", "127.0.0.1:9", "--timeout", "0.5", "--deadline", "5"]
    assert main([*argv, "--no-naptr", "sip:example.test"]) == 1
    document = json.loads(capsys.readouterr().out)
    statuses = {a["status"] for a in document.get("attempts", [])}
    assert "REFUSED" not in statuses
    assert "UNREACHABLE" in statuses, statuses
    assert statuses <= {"UNREACHABLE", "TIMEOUT", "ERROR"}, statuses


def test_explain_prints_unreachable() -> None:
    query = Query("_sip._udp.example.test", RType.SRV)
    answer = Answer(query, Status.UNREACHABLE, detail="connection refused")
    out = io.StringIO()
    explain([], out, root="sip:example.test", attempts=[answer])
    assert out.getvalue().splitlines() == [
        "sip:example.test",
        "└─ _sip._udp.example.test SRV: unreachable nameserver (connection refused)",
    ]


def test_explain_uses_the_additional_section() -> None:
    srv = Query("_sip._udp.example.test", RType.SRV)
    a = Query("sip.example.test", RType.A)
    address = ipaddress.ip_address("192.0.2.1")
    extra = Answer(a, Status.NOERROR, (address,), ttl=60)
    answer = Answer(
        srv, Status.NOERROR, (SrvRecord(10, 0, 5060, "sip.example.test"),), 60, additional=(extra,)
    )
    target = Target(Transport.UDP, address, 5060, "sip.example.test", path=(srv, a))
    out = io.StringIO()
    explain([target], out, root="sip:example.test", attempts=[answer])
    assert out.getvalue().splitlines() == [
        "sip:example.test",
        "└─ _sip._udp.example.test SRV: 1 record(s), ttl 60",
        "   └─ SRV 10 0 5060 sip.example.test",
        "      └─ sip.example.test A: 1 record(s), ttl 60  (additional section)",
        "         └─ A 192.0.2.1",
        "            └─ #1 udp 192.0.2.1:5060",
    ]


# --- errors -----------------------------------------------------------------------------


def test_no_targets_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ZONE, "--timeout", "0.5", "sip:gone.example.test"]) == 1
    assert "no targets for sip:gone.example.test" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["sip:bad host"], ["tel:123456"], []])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--timeout", "inf", "sip:a.test"], "--timeout"),
        (["--timeout", "nan", "sip:a.test"], "--timeout"),
        (["--timeout", "-1", "sip:a.test"], "--timeout"),
        (["--timeout", "0", "sip:a.test"], "--timeout"),
        (["--timeout", "soon", "sip:a.test"], "--timeout"),
        (["--deadline", "inf", "sip:a.test"], "--deadline"),
        (["--seed", "x", "sip:a.test"], "--seed"),
        (["--nameserver", "bogus", "sip:a.test"], "--nameserver"),
        (["--nameserver", "127.0.0.1:99999", "sip:a.test"], "--nameserver"),
        (["--nameserver", "127.0.0.1:0", "sip:a.test"], "--nameserver"),
        (["--nameserver", "127.0.0.1:", "sip:a.test"], "--nameserver"),
        (["--nameserver", "[::1]:x", "sip:a.test"], "--nameserver"),
        (["--nameserver", "[::1", "sip:a.test"], "--nameserver"),
        (["--nameserver", "[127.0.0.1]:53", "sip:a.test"], "--nameserver"),
        (["--nameserver", "example.com", "sip:a.test"], "--nameserver"),
        (["--zone", "/nonexistent.zone", "sip:a.test"], "--zone"),
        (["--transport", "carrier-pigeon", "sip:a.test"], "--transport"),
        (["ping", "--dns-timeout", "inf", "sip:a.test"], "--dns-timeout"),
        (["ping", "--timeout", "inf", "sip:a.test"], "--timeout"),
        (["ping", "--t1", "0", "sip:a.test"], "--t1"),
        (["ping", "--nameserver", "bogus", "sip:a.test"], "--nameserver"),
        (["lookup", "--timeout", "1e999", "sip:a.test"], "--timeout"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert named in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:5353", "127.0.0.1:5353"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::1]:5353", "[::1]:5353"),
        ("[2001:DB8::1]:53", "[2001:db8::1]:53"),
    ],
)
def test_nameserver_forms(text: str, normalized: str) -> None:
    assert nameserver(text) == normalized


def test_insecure_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["ping", "--insecure", "sip:bad host"]) == 2
    err = capsys.readouterr().err
    assert "warning: --insecure" in err


# --- as a process ------------------------------------------------------------------------


def test_installed_script_runs_the_demo() -> None:
    result = cli("--zone", str(DEMO), "sip:example.test")
    assert result.returncode == 0, result.stderr
    assert "sip1.example.test" in result.stdout


@pytest.mark.parametrize("argv", [["--timeout", "inf"], ["--nameserver", "[::1]:x"]])
def test_no_traceback_as_a_process(argv: list[str]) -> None:
    result = cli(*argv, "sip:example.test")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def piped(argv: list[str], reader: str) -> subprocess.CompletedProcess[str]:
    """``python -m asip_locate ARGV | READER`` in bash with pipefail."""
    command = shlex.join([sys.executable, "-m", "asip_locate", *argv])
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | {reader}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [*ZONE, "--explain", "sip:example.test"],
        ["ping", *ZONE, "--json", "--dns-timeout", "0.5", "--timeout", "0.2", "sip:example.test"],
    ],
)
def test_quiet_on_a_closed_pipe(argv: list[str]) -> None:
    # The reader is gone (long) before Python has started and writes its first line.
    result = piped(argv, "(exec 0<&-; true)")
    assert "Broken pipe" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr


def test_head_sees_the_first_line_only() -> None:
    result = piped([*ZONE, "--explain", "sip:example.test"], "head -1")
    assert result.stdout == "sip:example.test\n"
    assert result.stderr == ""
    assert result.returncode == 0


def test_every_status_has_a_rank_in_no_targets_messages() -> None:
    from asip_locate import NoTargetsError
    from asip_locate._model import Answer, Status

    attempts = tuple(Answer(Query("x.example.test", RType.SRV), status) for status in Status)
    message = str(NoTargetsError("sip:x.example.test", attempts))
    assert "x.example.test SRV: NXDOMAIN" in message
