"""CURVE across hosts: two graphs in two network namespaces joined by a veth pair (host A: capture on a generated
signal; host B: loudness -> JSONL, fed from A's tcp:// output), plus two intruders on host B.

Guards: B's events arrive over CURVE (>= 50 level blocks, no gap); an intruder in the clear and one with a key A
does not authorize receive 0 frames, and A counts both in `stream_auth_refused_total`; secret key files readable
by others, and unencrypted tcp:// beyond loopback, are refused with errors that say how to fix them.
Where namespaces are refused (no root), the same run uses two loopback addresses, 127.0.0.1 and 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stream.cli import main as cli
from stream.curve import write_keypair
from stream.errors import ConfigError
from stream.graph import load_graph
from stream.paths import REPO_ROOT

PEER = Path(__file__).with_name("curve_peer.py")


@dataclass(frozen=True)
class Hosts:
    a: str  # host A's address as host B reaches it
    bind_a: str  # where A's output binds
    on_a: tuple[str, ...]  # command prefix running a process on host A
    on_b: tuple[str, ...]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@functools.cache
def netns_refused() -> str | None:
    """Why two network namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"stream-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip()}"
    return None


@pytest.fixture(params=["netns", "loopback"])
def hosts(request):
    if request.param == "loopback":
        if netns_refused() is None:
            pytest.skip("two network namespaces joined by a veth pair ran instead")
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            port = s.getsockname()[1]
        yield Hosts(f"127.0.0.2:{port}", f"127.0.0.2:{port}", (), ())
        return
    if (reason := netns_refused()) is not None:
        pytest.skip(f"network namespaces refused here ({reason}); the two-loopback-address variant runs instead")
    tag = str(os.getpid())[-6:]
    ns_a, ns_b = f"stream-a-{tag}", f"stream-b-{tag}"
    _ip("netns", "add", ns_a)
    _ip("netns", "add", ns_b)
    try:
        _ip("link", "add", f"sa{tag}", "type", "veth", "peer", "name", f"sb{tag}")
        for ns, dev, address in ((ns_a, f"sa{tag}", "10.231.0.1/24"), (ns_b, f"sb{tag}", "10.231.0.2/24")):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", address, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield Hosts("10.231.0.1:5601", "0.0.0.0:5601", ("ip", "netns", "exec", ns_a), ("ip", "netns", "exec", ns_b))
    finally:
        _ip("netns", "del", ns_a)  # takes the veth pair with it
        _ip("netns", "del", ns_b)


GRAPH_A = """
[graph]
name = "host-a"
[metrics]
port = 0
[curve]
secret_key = "{keys}/a.key_secret"
authorized = "{keys}/authorized-a"
[[nodes]]
name = "capture"
kind = "capture"
endpoint = "tcp://{bind}"
config = {{ source = "signal", block_ms = 20.0 }}
"""

GRAPH_B = """
[graph]
name = "host-b"
[metrics]
port = 0
[curve]
secret_key = "{keys}/b.key_secret"
authorized = "{keys}/authorized-b"
servers = {{ "tcp://{a}" = "{keys}/a.key" }}
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["tcp://{a}"]
[[sinks]]
kind = "jsonl"
path = "{out}"
"""


async def _start(prefix: tuple[str, ...], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*prefix, *args, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)


async def test_two_hosts_talk_over_curve_and_refuse_intruders(hosts, tmp_path, run_metrics):
    keys, out = tmp_path / "keys", tmp_path / "events.jsonl"
    for name in ("a", "b"):
        write_keypair(keys, name)
    write_keypair(tmp_path / "intruder", "x")
    (keys / "authorized-a").mkdir()
    shutil.copy(keys / "b.key", keys / "authorized-a")
    (keys / "authorized-b").mkdir()
    (tmp_path / "a.toml").write_text(GRAPH_A.format(keys=keys, bind=hosts.bind_a))
    (tmp_path / "b.toml").write_text(GRAPH_B.format(keys=keys, a=hosts.a, out=out))
    run = (sys.executable, "-m", "stream.cli", "run")
    host_a = await _start(hosts.on_a, *run, str(tmp_path / "a.toml"), "--duration", "60", "--run-dir",
                          str(tmp_path / "run-a"))
    host_b = await _start(hosts.on_b, *run, str(tmp_path / "b.toml"), "--duration", "60", "--run-dir",
                          str(tmp_path / "run-b"))

    async def events_reach(count: int) -> None:
        while not (out.exists() and out.read_text().count("\n") >= count) and host_b.returncode is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(events_reach(5), 40)
    intruders = [await _start(hosts.on_b, sys.executable, str(PEER), f"tcp://{hosts.a}", "1.5", *extra)
                 for extra in ((), (str(keys / "a.key"), str(tmp_path / "intruder" / "x.key_secret")))]
    received = [int((await p.communicate())[0]) for p in intruders]
    await asyncio.wait_for(events_reach(60), 20)
    for host in (host_a, host_b):
        host.send_signal(signal.SIGINT)  # `ip netns exec` execs the command: same process
    logs = [(await p.communicate())[0].decode() for p in (host_a, host_b)]
    assert (host_a.returncode, host_b.returncode) == (0, 0), logs

    events = [json.loads(line) for line in out.read_text().splitlines()]
    steps = {round((b["t_audio"] - a["t_audio"]) / 0.02) for a, b in zip(events, events[1:])}
    refused = run_metrics(tmp_path / "run-a" / "metrics")
    print(f"{len(events)} events over CURVE; intruders received {received}; refused: key "
          f"{refused.get('stream_auth_refused_total', node='capture', reason='key'):.0f}, handshake "
          f"{refused.get('stream_auth_refused_total', node='capture', reason='handshake'):.0f}")
    assert len(events) >= 50 and steps == {1}  # B heard A, every block
    assert received == [0, 0]
    assert refused.get("stream_auth_refused_total", node="capture", reason="handshake") >= 1  # in the clear
    assert refused.get("stream_auth_refused_total", node="capture", reason="key") >= 1  # key not authorized


CLEAR = """
[graph]
name = "clear"
{graph}
[[nodes]]
name = "capture"
kind = "capture"
endpoint = "{endpoint}"
"""


@pytest.mark.parametrize("endpoint,graph,refused", [
    ("tcp://0.0.0.0:5601", "", True),
    ("tcp://10.1.2.3:5601", "", True),
    ("tcp://0.0.0.0:5601", "plaintext_tcp = true", False),
    ("tcp://127.0.0.1:5601", "", False),
    ("tcp://[::1]:5601", "", False),
])
def test_unencrypted_tcp_beyond_loopback_is_refused_unless_allowed(tmp_path, endpoint, graph, refused):
    (tmp_path / "g.toml").write_text(CLEAR.format(endpoint=endpoint, graph=graph))
    if refused:
        with pytest.raises(ConfigError, match="unencrypted; add a \\[curve\\] table.*plaintext_tcp = true"):
            load_graph(tmp_path / "g.toml")
    else:
        load_graph(tmp_path / "g.toml")


def test_curve_input_without_publisher_key_is_refused(tmp_path):
    write_keypair(tmp_path, "b")
    (tmp_path / "g.toml").write_text(f"""
[curve]
secret_key = "{tmp_path}/b.key_secret"
authorized = "{tmp_path}"
[[nodes]]
name = "loudness"
kind = "loudness"
inputs = ["tcp://10.0.0.1:5601"]
""")
    with pytest.raises(ConfigError, match='no publisher key; add it to \\[curve\\] servers'):
        load_graph(tmp_path / "g.toml")


def test_keys_command_writes_a_private_secret_and_refuses_readable_or_existing_keys(tmp_path, capsys):
    assert cli(["keys", "host-a", "--dir", str(tmp_path)]) == 0
    secret, public = tmp_path / "host-a.key_secret", tmp_path / "host-a.key"
    assert (secret.stat().st_mode & 0o777, public.stat().st_mode & 0o777) == (0o600, 0o644)
    assert cli(["keys", "host-a", "--dir", str(tmp_path)]) == 1
    assert "exists" in capsys.readouterr().err
    secret.chmod(0o640)
    (tmp_path / "g.toml").write_text(f'[curve]\nsecret_key = "{secret}"\nauthorized = "{tmp_path}"\n'
                                     '[[nodes]]\nname = "capture"\nkind = "capture"\n')
    with pytest.raises(ConfigError, match="readable by group or others \\(mode 0640\\); run `chmod 600"):
        load_graph(tmp_path / "g.toml")
