"""FailoverPolicy driven with synthetic observations and a virtual clock, as users' own tests
would drive it."""

import pytest

import fspbx_ha


def healthy_pair(**kw):
    p = fspbx_ha.FailoverPolicy(rise=2, fall=3, hold_down=60.0, **kw)
    p.floating_record("a", 0.0)
    p.schema_drift(False, 0.0)
    for n in ("a", "b"):
        p.replication_lag(n, 0.1, 0.0)
        p.sync_complete(n, True, 0.0)
        p.probe_round(n, True, 0.0)
        p.probe_round(n, True, 0.0)
    assert p.health("a") == p.health("b") == "up"
    return p


def flips(actions):
    return [a.to for a in actions if a.kind == "flip_dns"]


def test_fails_over_after_fall_rounds_and_fences():
    p = healthy_pair()
    assert flips(p.probe_round("a", False, 0.5)) == []
    assert flips(p.probe_round("a", False, 1.0)) == []
    actions = p.probe_round("a", False, 1.5)
    assert [a.kind for a in actions if a.kind != "notify"] == ["fence", "flip_dns"]
    flip = next(a for a in actions if a.kind == "flip_dns")
    assert (flip.from_node, flip.to) == ("a", "b")
    assert p.pending_flip == "b"
    p.flip_result("b", True, 2.0)
    assert p.active == "b"
    assert p.health("a") == "down"


def test_blips_shorter_than_fall_never_flip():
    p = healthy_pair()
    t = 0.0
    for _ in range(50):
        for ok in (False, False, True):
            t += 0.5
            assert flips(p.probe_round("a", ok, t)) == []
    assert p.active == "a"


def test_lag_blocks_the_flip_and_says_why():
    p = healthy_pair()
    p.replication_lag("b", 42.0, 0.1)
    actions = []
    for i in range(1, 4):
        actions += p.probe_round("a", False, 0.5 * i)
    assert flips(actions) == []
    assert any("replication lag into B is 42.0s" in (a.message or "") for a in actions)


def test_switchover_and_bad_input():
    p = healthy_pair()
    assert flips(p.switchover("b", 1.0)) == ["b"]
    with pytest.raises(ValueError, match='node: expected "a" or "b"'):
        p.probe_round("c", True, 1.0)
    with pytest.raises(ValueError, match="lag: expected"):
        fspbx_ha.FailoverPolicy(lag="maybe")
