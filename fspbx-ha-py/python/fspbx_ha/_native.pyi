"""Type stubs of the native module (the Rust library's bindings)."""

from os import PathLike
from typing import List, Optional, Tuple, Union

__version__: str

class FspbxHaError(Exception):
    """Base class of every fspbx_ha error."""

    problems: List[Tuple[str, str, str]]

class ConfigError(FspbxHaError):
    """The configuration is unreadable, malformed or invalid.

    ``problems`` lists ``(key_path, expected, got)`` for each invalid value.
    """

class SecretError(FspbxHaError):
    """A secret reference (``env:NAME`` / ``file:PATH``) could not be resolved."""

class SshError(FspbxHaError):
    """SSH: keys, host keys, connection, authentication, commands, forwards."""

class PostgresError(FspbxHaError):
    """PostgreSQL: connection or query."""

class LocalIoError(FspbxHaError):
    """A local file could not be written."""

class Node:
    """One node of the pair."""

    @property
    def name(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def addresses(self) -> List[str]: ...
    @property
    def ssh_host(self) -> str: ...
    @property
    def ssh_port(self) -> int: ...
    @property
    def postgres(self) -> str:
        """``user@host:port/dbname`` (never a password)."""

class ClusterConfig:
    """The cluster configuration, parsed and validated."""

    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> ClusterConfig:
        """Read, parse and validate a TOML file. Raises ConfigError."""
    @staticmethod
    def from_toml(text: str) -> ClusterConfig:
        """Parse and validate TOML text. Raises ConfigError."""
    @staticmethod
    def template() -> str:
        """The commented template ``fspbx-ha init`` writes."""
    @property
    def nodes(self) -> List[Node]: ...
    def node(self, name: str) -> Optional[Node]: ...
    @property
    def floating_name(self) -> str: ...
    @property
    def floating_zone(self) -> str: ...
    @property
    def floating_ttl(self) -> int: ...
    def to_toml(self) -> str: ...
    def to_json(self) -> str: ...

class CheckItem:
    """One check result."""

    node: str
    check: str
    status: str
    """``pass``, ``warn``, ``fail`` or ``skip``."""
    observed: str
    expected: str
    fix: Optional[str]

class CheckReport:
    """All results of a check run."""

    @property
    def ok(self) -> bool: ...
    @property
    def items(self) -> List[CheckItem]: ...
    def find(self, node: str, check: str) -> Optional[CheckItem]: ...
    def table(self) -> str: ...
    def to_json(self) -> str: ...

def check(config: ClusterConfig, *, peer_ssh: bool = True) -> CheckReport:
    """Run the preflight checks on both nodes (blocks; the GIL is released)."""

class PolicyAction:
    """One action a FailoverPolicy asks for."""

    kind: str
    """``flip_dns``, ``fence`` or ``notify``."""
    to: Optional[str]
    """flip_dns: the target node (``a`` or ``b``)."""
    from_node: Optional[str]
    """flip_dns: the node the record is expected to hold now (compare-and-swap guard)."""
    node: Optional[str]
    """fence: the node to fence."""
    level: Optional[str]
    """notify: ``info``, ``warning`` or ``critical``."""
    message: Optional[str]
    """flip_dns: why; notify: the message."""

class FailoverPolicy:
    """The failover decision state machine (no I/O, no clock of its own).

    Feed it observations with ``at`` = seconds since creation (never decreasing) and execute
    the actions it returns. Nodes are ``"a"`` and ``"b"``.
    """

    def __init__(
        self,
        *,
        rise: int = 2,
        fall: int = 3,
        hold_down: float = 300.0,
        auto_failback: bool = False,
        preferred: str = "a",
        max_replication_lag: float = 10.0,
        lag: str = "hard",
        schema: str = "hard",
        sync: str = "soft",
        flip_timeout: float = 30.0,
    ) -> None: ...
    def probe_round(self, node: str, ok: bool, at: float) -> List[PolicyAction]: ...
    def floating_record(self, active: Optional[str], at: float) -> List[PolicyAction]: ...
    def replication_lag(self, node: str, lag: Optional[float], at: float) -> List[PolicyAction]: ...
    def schema_drift(self, drift: bool, at: float) -> List[PolicyAction]: ...
    def sync_complete(self, node: str, complete: bool, at: float) -> List[PolicyAction]: ...
    def switchover(self, to: str, at: float) -> List[PolicyAction]: ...
    def flip_result(self, to: str, ok: bool, at: float) -> List[PolicyAction]: ...
    def tick(self, at: float) -> List[PolicyAction]: ...
    def health(self, node: str) -> str:
        """``up``, ``down`` or ``unknown``."""
    @property
    def active(self) -> Optional[str]: ...
    @property
    def pending_flip(self) -> Optional[str]: ...
