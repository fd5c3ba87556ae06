"""ClusterConfig from Python: loading, validation errors with key paths, the exception tree."""

import json

import pytest

import fspbx_ha


def template_with(old: str, new: str, count: int = 1) -> str:
    text = fspbx_ha.ClusterConfig.template()
    assert old in text
    return text.replace(old, new, count)


def test_template_loads_with_two_nodes():
    cfg = fspbx_ha.ClusterConfig.from_toml(fspbx_ha.ClusterConfig.template())
    assert [n.name for n in cfg.nodes] == ["a", "b"]
    assert cfg.node("B").hostname == "server2.example.com"
    assert cfg.floating_name == "pbx.example.com"
    assert cfg.floating_ttl == 60
    assert cfg.nodes[0].ssh_port == 22
    assert cfg.nodes[1].postgres == "fusionpbx@127.0.0.1:5432/fusionpbx (via SSH)"
    assert json.loads(cfg.to_json())["floating"]["zone"] == "example.com"


def test_bad_fields_raise_config_error_with_key_paths():
    text = template_with("port = 22", "port = 0").replace("fall = 3", "fall = 0")
    with pytest.raises(fspbx_ha.ConfigError) as exc:
        fspbx_ha.ClusterConfig.from_toml(text)
    assert exc.value.problems == [
        ("nodes[0].ssh.port", "1..65535", "0"),
        ("policy.fall", "1 or more", "0"),
    ]
    assert "nodes[0].ssh.port: expected 1..65535, got 0" in str(exc.value)


def test_type_errors_name_the_key():
    with pytest.raises(fspbx_ha.ConfigError, match=r"floating\.ttl"):
        fspbx_ha.ClusterConfig.from_toml(template_with("ttl = 60", 'ttl = "sixty"'))


def test_inline_secret_is_refused_and_not_echoed():
    text = template_with('password = "env:FSPBX_HA_DB_PASSWORD_A"', 'password = "Pa55-inline"')
    with pytest.raises(fspbx_ha.ConfigError) as exc:
        fspbx_ha.ClusterConfig.from_toml(text)
    assert "nodes[0].postgres.password" in str(exc.value)
    assert "Pa55-inline" not in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(fspbx_ha.ConfigError, match="cannot read configuration"):
        fspbx_ha.ClusterConfig.load(tmp_path / "nope.toml")


def test_exception_hierarchy():
    for cls in (
        fspbx_ha.ConfigError,
        fspbx_ha.SecretError,
        fspbx_ha.SshError,
        fspbx_ha.PostgresError,
        fspbx_ha.LocalIoError,
    ):
        assert issubclass(cls, fspbx_ha.FspbxHaError)
        assert issubclass(cls, Exception)
    assert not issubclass(fspbx_ha.ConfigError, fspbx_ha.SshError)


def test_stubs_and_marker_are_installed():
    import pathlib

    pkg = pathlib.Path(fspbx_ha.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "_native.pyi").read_text()
    for name in fspbx_ha.__all__:
        if name != "__version__":
            assert name in stub, name
