"""DNS providers from Python against real servers: Knot (RFC 2136 + TSIG) and moto (Route53).

Knot and moto are started here by PID and always stopped (PID 1 is no init).
"""

import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from fspbx_ha import _native as fh

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = pathlib.Path(os.environ.get("FSPBX_HA_LAB_VENV", ROOT / ".cache" / "venv"))


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def wait(what, pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s")


def kdig(addr, name, rtype="A"):
    ip, port = addr.rsplit(":", 1)
    out = subprocess.run(
        ["kdig", f"@{ip}", "-p", port, "+short", "+norecurse", "+time=1", "+retry=0", name, rtype],
        capture_output=True, text=True, check=True,
    ).stdout
    return sorted(l.strip() for l in out.splitlines() if l.strip())


@pytest.fixture(scope="module")
def knot():
    d = pathlib.Path(tempfile.mkdtemp(prefix="fspbx-py-knot-"))
    secret = next(
        l.split(":", 1)[1].strip()
        for l in subprocess.run(["keymgr", "-t", "labkey", "hmac-sha256"], capture_output=True, text=True, check=True).stdout.splitlines()
        if l.strip().startswith("secret:")
    )
    port = free_port("127.0.0.53")
    (d / "zones").mkdir()
    (d / "zones" / "example.test.zone").write_text(
        "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 60 30 3600 5\n@ NS ns1\n"
        "ns1 A 127.0.0.53\nserver1 A 127.0.0.2\nserver2 A 127.0.0.3\n"
    )
    conf = d / "knot.conf"
    conf.write_text(
        f'server:\n    rundir: "{d}"\n    listen: 127.0.0.53@{port}\n    udp-workers: 1\n    tcp-workers: 1\n'
        f'    background-workers: 1\ndatabase:\n    storage: "{d}"\ncontrol:\n    listen: "{d}/knot.sock"\n'
        f"key:\n  - id: labkey\n    algorithm: hmac-sha256\n    secret: {secret}\n"
        "acl:\n  - id: upd\n    key: labkey\n    action: update\n"
        f'template:\n  - id: default\n    storage: "{d}/zones"\n    file: "%s.zone"\n    zonefile-sync: 0\n'
        "    journal-content: changes\nzone:\n  - domain: example.test\n    acl: upd\n"
    )
    os.chmod(conf, 0o600)
    subprocess.run(["knotc", "-c", str(conf), "conf-check"], check=True, capture_output=True)
    proc = subprocess.Popen(["knotd", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"127.0.0.53:{port}"
    try:
        wait("knotd", lambda: subprocess.run(
            ["kdig", "@127.0.0.53", "-p", str(port), "+short", "+time=1", "+retry=0", "example.test", "SOA"],
            capture_output=True, text=True).stdout.strip() != "")
        yield {"addr": addr, "secret": secret}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def moto():
    port = free_port("127.0.0.1")
    proc = subprocess.Popen(
        [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait("moto", up, timeout=30)
        import boto3
        r53 = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="AKIDPY", aws_secret_access_key="py-secret")
        r53.create_hosted_zone(Name="example.test.", CallerReference=str(time.time()))
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rfc(knot, secret=None):
    return fh.Rfc2136(knot["addr"], "example.test", key_name="labkey", key_secret=secret or knot["secret"])


def test_rfc2136_cas_flip_and_mismatch(knot):
    p = rfc(knot)
    assert isinstance(p, fh.DnsProvider) and p.name == "rfc2136"
    assert p.capabilities()["atomic_cas"] is True
    assert p.get("py.example.test") is None
    r = p.set("py.example.test", ["127.0.0.2"], ttl=30, expect=[])
    p.wait_applied(r, timeout_s=5)
    assert kdig(knot["addr"], "py.example.test") == ["127.0.0.2"]
    assert p.get("py.example.test") == {"name": "py.example.test.", "kind": "A", "ttl": 30, "values": ["127.0.0.2"]}

    steps = p.flip("py.example.test", ["127.0.0.3"], ttl=30)
    assert steps[0]["kind"] == "A" and steps[0]["from"]["values"] == ["127.0.0.2"]
    assert kdig(knot["addr"], "py.example.test") == ["127.0.0.3"]

    with pytest.raises(fh.DnsCasMismatchError) as e:
        p.set("py.example.test", ["127.0.0.9"], ttl=30, expect=["127.0.0.2"])
    assert e.value.found["values"] == ["127.0.0.3"]
    assert e.value.provider == "rfc2136"
    assert isinstance(e.value, fh.DnsError) and isinstance(e.value, fh.FspbxHaError)
    assert kdig(knot["addr"], "py.example.test") == ["127.0.0.3"]


def test_rfc2136_concurrent_flips_one_wins(knot):
    p = rfc(knot)
    p.set("race.example.test", ["127.0.0.2"], ttl=30)
    results = {}

    def flip(to):
        try:
            p.set("race.example.test", [to], ttl=30, expect=["127.0.0.2"])
            results[to] = "won"
        except fh.DnsCasMismatchError:
            results[to] = "lost"

    threads = [threading.Thread(target=flip, args=(ip,)) for ip in ("127.0.0.3", "127.0.0.4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["lost", "won"], results
    winner = next(ip for ip, r in results.items() if r == "won")
    assert kdig(knot["addr"], "race.example.test") == [winner]


def test_rfc2136_wrong_key_is_an_auth_error_without_the_secret(knot):
    wrong = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1zZXJ2ZXJzLWtleSE="
    p = rfc(knot, secret=wrong)
    with pytest.raises(fh.DnsAuthError) as e:
        p.set("server1.example.test", ["127.0.0.9"])
    assert "rejected the TSIG key" in str(e.value)
    assert wrong not in str(e.value) and wrong not in repr(p)
    assert kdig(knot["addr"], "server1.example.test") == ["127.0.0.2"]


def test_propagation_report(knot):
    p = rfc(knot)
    p.set("prop.example.test", ["127.0.0.3"], ttl=30)
    rep = fh.wait_propagated("example.test", [knot["addr"]], "prop.example.test", ["127.0.0.3"], timeout_s=5)
    assert rep["verdict"]["moved"] == [knot["addr"]]
    assert rep["answers"][0]["outcome"] == {"kind": "records", "ttl": 30, "values": ["127.0.0.3"]}
    assert rep["answers"][0]["soa_serial"] >= 2
    late = fh.wait_propagated("example.test", [knot["addr"]], "prop.example.test", ["127.0.0.9"], timeout_s=0.3)
    assert late["verdict"]["lagging"] == [knot["addr"]] and late["clients_moved_by"] is None


def test_route53_against_moto(moto):
    p = fh.Route53("example.test", "AKIDPY", "py-secret", endpoint=moto)
    assert p.name == "route53" and p.capabilities()["change_tracking"] is True
    r = p.set("pbx.example.test", ["127.0.0.2"], ttl=60, expect=[])
    p.wait_applied(r, timeout_s=5)
    assert p.get("pbx.example.test")["values"] == ["127.0.0.2"]
    steps = p.flip("pbx.example.test", ["127.0.0.3"], ttl=60)
    assert steps[0]["receipt"]["id"]
    with pytest.raises(fh.DnsCasMismatchError) as e:
        p.set("pbx.example.test", ["127.0.0.9"], expect=["127.0.0.2"])
    assert e.value.found["values"] == ["127.0.0.3"]
    with pytest.raises(fh.DnsZoneNotFoundError):
        fh.Route53("nothere.test", "AKIDPY", "py-secret", endpoint=moto).get("x.nothere.test")


def test_bad_input_and_cloudflare_capabilities():
    with pytest.raises(fh.DnsInputError):
        fh.Rfc2136("127.0.0.53:53", "example.test", key_name="k")
    with pytest.raises(fh.DnsInputError):
        fh.Rfc2136("127.0.0.53:53", "example.test", key_name="k", key_secret="not base64!")
    cf = fh.Cloudflare("example.test", "cf-token-value")
    assert cf.capabilities() == {"atomic_cas": False, "min_ttl": 60, "change_tracking": False}
    assert "cf-token-value" not in repr(cf)
    p = fh.Rfc2136("127.0.0.53:53", "example.test")
    with pytest.raises(fh.DnsInputError):
        p.set("pbx.elsewhere.invalid", ["127.0.0.2"])
    with pytest.raises(fh.DnsInputError):
        p.set("pbx.example.test", ["not-an-ip"])


def test_provider_from_cluster_config(knot, monkeypatch):
    text = (
        fh.ClusterConfig.template()
        .replace("example.com", "example.test")
        .replace('server = "192.0.2.53:53"', f'server = "{knot["addr"]}"')
        .replace('key_name = "fspbx-ha"', 'key_name = "labkey"')
    )
    cfg = fh.ClusterConfig.from_toml(text)
    monkeypatch.setenv("FSPBX_HA_TSIG_KEY", knot["secret"])
    p = fh.DnsProvider.from_config(cfg)
    assert p.name == "rfc2136" and p.zone == "example.test."
    p.set("cfg.example.test", ["127.0.0.2"], expect=[])
    assert kdig(knot["addr"], "cfg.example.test") == ["127.0.0.2"]
    monkeypatch.delenv("FSPBX_HA_TSIG_KEY")
    with pytest.raises(fh.DnsInputError) as e:
        fh.DnsProvider.from_config(cfg)
    assert "FSPBX_HA_TSIG_KEY" in str(e.value) and "floating.provider.key_secret" in str(e.value)


# ---- Floating: the cluster's floating and node records from its configuration, on the lab's
# Knot (primary 127.0.0.53 + secondary 127.0.0.54, both asked for propagation).

def lab_servers(lab):
    return lab.topology["dns"]["servers"]


def test_floating_apply_show_flip_verify_on_the_lab(lab):
    cfg = fh.ClusterConfig.load(lab.config_path)
    f = fh.Floating(cfg)
    assert (f.name, f.zone) == ("pbx.example.test", "example.test")
    assert "rfc2136" in repr(f)
    servers = lab_servers(lab)
    assert len(servers) == 2

    # apply creates or corrects the three names; a plan afterwards has nothing to do.
    applied = f.apply()
    assert applied["applied"] is True
    plan = f.plan()
    assert plan["applied"] is False and plan["changes"] == 0
    assert {s["desired"]["name"] for s in plan["steps"]} == {
        "server1.example.test.", "server2.example.test.", "pbx.example.test."}
    assert [s["action"]["action"] for s in plan["steps"]] == ["unchanged"] * 3
    for addr in servers:
        assert kdig(addr, "server1.example.test") == ["127.0.0.2"]
        assert kdig(addr, "server2.example.test") == ["127.0.0.3"]

    # Put it on node A, then flip to node B: both servers answer B, and the report says when
    # clients holding A's answer (TTL 30) will have moved.
    f.flip("a", wait=20.0)
    shown = f.show()
    assert shown["active_node"] == "a"
    assert shown["provider"] == "rfc2136" and shown["atomic_cas"] is True
    assert len(shown["servers"]) == 2 and shown["servers_error"] is None
    assert all(s["outcome"]["values"] == ["127.0.0.2"] for s in shown["servers"])

    r = f.flip("b", wait=20.0)
    assert r["target_node"] == "b" and r["to"] == ["127.0.0.3"]
    assert r["steps"][0]["from"]["values"] == ["127.0.0.2"]
    assert r["all_servers_answer"] is True
    assert r["propagation"][0]["old_ttl"] == 30
    assert r["clients_moved_by"] is not None
    for addr in servers:
        assert kdig(addr, "pbx.example.test") == ["127.0.0.3"]
    assert f.show()["active_node"] == "b"

    # A stale guard: nothing changes, the error says what is there.
    with pytest.raises(fh.DnsCasMismatchError) as e:
        f.flip("a", expect=["127.0.0.9"], wait=None)
    assert e.value.found["values"] == ["127.0.0.3"]
    assert e.value.provider == "rfc2136"
    assert kdig(servers[0], "pbx.example.test") == ["127.0.0.3"]

    # verify: the current value is everywhere; a value nobody serves times out as ok=False.
    v = f.verify(timeout=20.0)
    assert v["ok"] is True and sorted(v["reports"][0]["verdict"]["moved"]) == sorted(servers)
    late = f.verify(to="127.0.0.9", timeout=0.5)
    assert late["ok"] is False
    assert sorted(late["reports"][0]["verdict"]["lagging"]) == sorted(servers)
    assert late["clients_moved_by"] is None

    with pytest.raises(fh.DnsInputError) as e:
        f.flip("nonsense")
    assert "to" in str(e.value) and "`a`, `b` or IP addresses" in str(e.value)

    # Back to node A, guarded by what we know is there.
    back = f.flip("a", expect=["127.0.0.3"], wait=20.0)
    assert back["all_servers_answer"] is True
    assert kdig(servers[1], "pbx.example.test") == ["127.0.0.2"]


def test_floating_unresolvable_tsig_reference_is_an_input_error(lab, monkeypatch):
    key_file = lab.topology["dns"]["update"]["key_file"]
    text = lab.config_path.read_text().replace(f'"file:{key_file}"', '"env:FSPBX_HA_TEST_UNSET_TSIG"')
    monkeypatch.delenv("FSPBX_HA_TEST_UNSET_TSIG", raising=False)
    with pytest.raises(fh.DnsInputError) as e:
        fh.Floating(fh.ClusterConfig.from_toml(text))
    assert "floating.provider.key_secret" in str(e.value)
    assert "FSPBX_HA_TEST_UNSET_TSIG" in str(e.value)
    secret = pathlib.Path(key_file).read_text().strip()
    assert secret not in str(e.value)
