"""fspbx_ha: high availability for a two-node FS PBX, from Python.

The classes and functions here are the Rust library's own (module ``fspbx_ha._native``); this
package only re-exports them.

    >>> import fspbx_ha
    >>> cfg = fspbx_ha.ClusterConfig.from_toml(fspbx_ha.ClusterConfig.template())
    >>> [n.name for n in cfg.nodes]
    ['a', 'b']
"""

from ._native import (
    DnsProvider,
    Route53,
    Cloudflare,
    Rfc2136,
    Floating,
    wait_propagated,
    DnsError,
    DnsCasMismatchError,
    DnsAuthError,
    DnsZoneNotFoundError,
    DnsThrottledError,
    DnsTimeoutError,
    DnsInputError,
    CheckItem,
    CheckReport,
    ClusterConfig,
    ConfigError,
    FailoverPolicy,
    FspbxHaError,
    LocalIoError,
    Node,
    PolicyAction,
    PostgresError,
    ReplicationError,
    ApplyReport,
    ReplicationPair,
    ReplicationPlan,
    ReplicationStatus,
    SecretError,
    SshError,
    VerifyReport,
    __version__,
    check,
)

__all__ = [
    "DnsProvider",
    "Route53",
    "Cloudflare",
    "Rfc2136",
    "Floating",
    "wait_propagated",
    "DnsError",
    "DnsCasMismatchError",
    "DnsAuthError",
    "DnsZoneNotFoundError",
    "DnsThrottledError",
    "DnsTimeoutError",
    "DnsInputError",
    "CheckItem",
    "CheckReport",
    "ClusterConfig",
    "ConfigError",
    "FailoverPolicy",
    "FspbxHaError",
    "LocalIoError",
    "Node",
    "PolicyAction",
    "PostgresError",
    "ReplicationError",
    "ApplyReport",
    "ReplicationPair",
    "ReplicationPlan",
    "ReplicationStatus",
    "VerifyReport",
    "SecretError",
    "SshError",
    "__version__",
    "check",
]
