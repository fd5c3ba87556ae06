"""Type stubs of the native module (the Rust library's bindings)."""

from os import PathLike
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

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

class ReplicationError(FspbxHaError):
    """Replication refused or a step failed; the message names node, step and fix."""

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

class Controller:
    """The failover controller: probes both nodes every ``policy.interval``, feeds the policy,
    flips the floating record (compare-and-swap), fences, notifies and writes the audit log.

    Status dicts hold ``rounds``, ``active``, ``nodes`` (``name``, ``health``,
    ``last_round_ok``, ``observations``), ``flips_ok``, ``flips_failed``, ``fences``,
    ``last_alert``. Each ``run_for``/``start`` builds a fresh controller that takes the
    floating record as the truth (no flapping across restarts).
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        audit_log: Optional[Union[str, PathLike]] = None,
        metrics_listen: Optional[str] = None,
    ) -> None: ...
    def run_for(self, seconds: float) -> Dict[str, Any]:
        """Run for ``seconds`` (blocks; the GIL is released); returns the final status."""
    def start(self) -> None:
        """Start in the background."""
    def stop(self) -> Dict[str, Any]:
        """Stop a started controller; returns the final status."""
    def switchover(self, to: str, *, dry_run: bool = False, fence: bool = False) -> Dict[str, Any]:
        """Planned move to ``"a"`` or ``"b"``; ``outcome`` is ``flipped``, ``would_flip`` or
        ``already_active``; with ``fence``, the node switched away from is fenced after the flip
        (``fence`` in the result). A refusal raises FspbxHaError."""
    @property
    def running(self) -> bool: ...
    @property
    def status(self) -> Optional[Dict[str, Any]]: ...
    @property
    def metrics_addr(self) -> Optional[str]:
        """``ip:port`` of ``/metrics`` and ``/health`` once started (with metrics_listen)."""
    @property
    def audit_log(self) -> str: ...

def failover_status(config: ClusterConfig, *, last: int = 20) -> Dict[str, Any]:
    """The last audit records, the active node, the controller's /health and the registrations
    and calls counted on the new active node since the last flip (blocks)."""


class DnsError(FspbxHaError):
    """DNS provider or DNS server error. ``provider`` names it when known."""

    provider: Optional[str]
    found: Optional[Dict[str, Any]]

class DnsCasMismatchError(DnsError):
    """The compare-and-swap guard failed; nothing was changed. ``found`` is the record set
    there now (``{"name", "kind", "ttl", "values"}``) or None."""

class DnsAuthError(DnsError):
    """The provider refused the credentials, or the DNS server the TSIG key."""

class DnsZoneNotFoundError(DnsError):
    """The zone is unknown to the provider."""

class DnsThrottledError(DnsError):
    """The provider kept throttling the requests."""

class DnsTimeoutError(DnsError):
    """A DNS operation did not finish in time."""

class DnsInputError(DnsError):
    """A name, value, TTL or provider setting is not acceptable."""

class DnsProvider:
    """Base class of Route53, Cloudflare and Rfc2136."""

    @staticmethod
    def from_config(config: ClusterConfig) -> "DnsProvider": ...
    @property
    def name(self) -> str: ...
    @property
    def zone(self) -> str: ...
    def capabilities(self) -> Dict[str, Any]: ...
    def get(self, name: str, kind: str = "A") -> Optional[Dict[str, Any]]: ...
    def set(
        self,
        name: str,
        values: List[str],
        ttl: int = 60,
        kind: Optional[str] = None,
        expect: Optional[List[str]] = None,
    ) -> Dict[str, Any]: ...
    def wait_applied(self, receipt: Dict[str, Any], timeout_s: float = 60.0) -> None: ...
    def flip(
        self, name: str, to: List[str], ttl: int = 60, expected: Optional[List[str]] = None
    ) -> List[Dict[str, Any]]: ...

class Route53(DnsProvider):
    def __init__(
        self,
        zone: str,
        access_key_id: str,
        secret_access_key: str,
        hosted_zone_id: Optional[str] = None,
        endpoint: Optional[str] = None,
        region: Optional[str] = None,
    ) -> None: ...

class Cloudflare(DnsProvider):
    def __init__(
        self,
        zone: str,
        api_token: str,
        zone_id: Optional[str] = None,
        endpoint: Optional[str] = None,
        per_page: Optional[int] = None,
    ) -> None: ...

class Rfc2136(DnsProvider):
    def __init__(
        self,
        server: str,
        zone: str,
        key_name: Optional[str] = None,
        key_secret: Optional[str] = None,
        algorithm: str = "hmac-sha256",
    ) -> None: ...

def wait_propagated(
    zone: str,
    servers: List[str],
    name: str,
    want: List[str],
    kind: str = "A",
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
    old_ttl: Optional[int] = None,
) -> Dict[str, Any]: ...

class Floating:
    """The cluster's floating record and node records, from its ``[floating]`` section.

    Reports are dicts shaped like ``fspbx-ha --json dns …``. Errors: the ``DnsError`` family
    (``DnsCasMismatchError`` for a lost guard, ``DnsInputError`` for bad input or a secret
    reference that does not resolve)."""

    def __init__(self, config: ClusterConfig) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def zone(self) -> str: ...
    def show(self) -> Dict[str, Any]:
        """``{"zone", "name", "provider", "atomic_cas", "floating", "active_node", "nodes",
        "servers", "servers_error"}``."""
    def flip(
        self,
        to: str,
        expect: Optional[List[str]] = None,
        ttl: Optional[int] = None,
        wait: Optional[float] = 90.0,
    ) -> Dict[str, Any]:
        """Points the floating record at ``to`` (``"a"``, ``"b"``, a node or host name, or
        addresses) with compare-and-swap; ``wait=None`` does not wait for the servers.
        ``{"name", "target_node", "to", "steps", "propagation", "all_servers_answer",
        "clients_moved_by"}``."""
    def verify(self, to: Optional[str] = None, timeout: float = 90.0) -> Dict[str, Any]:
        """``{"ok", "reports", "clients_moved_by"}``."""
    def plan(self, node_ttl: int = 300) -> Dict[str, Any]:
        """``{"applied": False, "steps", "changes": 0}``; each step has ``desired`` and
        ``action`` (``{"action": "unchanged" | "create" | "update", ...}``)."""
    def apply(self, node_ttl: int = 300) -> Dict[str, Any]:
        """``{"applied": True, "steps", "changes"}``."""

class ReplicationPlan:
    """A replication plan (setup or teardown). Secrets show as ``<redacted>``."""

    @property
    def kind(self) -> str:
        """``setup`` or ``teardown``."""
    @property
    def step_ids(self) -> List[str]: ...
    @property
    def steps(self) -> List[Dict[str, Any]]:
        """Each: id, side, node, action, why, destructive, postcondition."""
    @property
    def adopted(self) -> List[str]: ...
    @property
    def notes(self) -> List[str]: ...
    @property
    def is_empty(self) -> bool: ...
    @property
    def is_destructive(self) -> bool: ...
    def render(self) -> str: ...
    def to_json(self) -> str: ...
    def __len__(self) -> int: ...

class ApplyReport:
    """What ``ReplicationPair.apply`` did."""

    @property
    def executed(self) -> int: ...
    @property
    def steps(self) -> List[Dict[str, Any]]:
        """Each: id, node, result (``executed`` or ``already_done``), elapsed_s."""
    @property
    def elapsed_s(self) -> float: ...
    def to_json(self) -> str: ...

class ReplicationStatus:
    """Health of both replication directions."""

    @property
    def verdict(self) -> str:
        """``healthy``, ``degraded`` or ``broken``."""
    @property
    def reasons(self) -> List[str]: ...
    @property
    def notes(self) -> List[str]:
        """Error and conflict counters (history since the statistics were reset)."""
    @property
    def directions(self) -> List[Dict[str, Any]]: ...
    @property
    def conflicts(self) -> Optional[Dict[str, Any]]:
        """``{"directions": [{"from", "to", "subscription", "state",
        "apply_error_count", "conflicts_counted"}]}``; state is ``flowing``, ``failing``,
        ``disabled`` or ``missing``."""
    @property
    def drift(self) -> Optional[Dict[str, Any]]:
        """``{"nodes", "publication_missing", "tables", "subscriptions"}`` (see SchemaDrift)."""
    @property
    def sequences(self) -> Optional[Dict[str, Any]]:
        """``{"strategy", "step", "offsets", "margin", "owned", "compliant", "problems"}``."""
    @property
    def slots(self) -> Optional[Dict[str, Any]]:
        """``{"limit_bytes", "nodes": [{"node", "max_slot_wal_keep_size", "slots"}],
        "critical", "warnings", "explanation"}``."""
    def render(self) -> str: ...
    def to_json(self) -> str: ...

class VerifyReport:
    """Table-by-table comparison of the two nodes."""

    @property
    def clean(self) -> bool: ...
    @property
    def differing(self) -> List[str]: ...
    @property
    def rows_compared(self) -> int: ...
    @property
    def tables(self) -> List[Dict[str, Any]]: ...
    def render(self) -> str: ...
    def to_json(self) -> str: ...

class ReplicationPair:
    """Connections to both nodes' PostgreSQL for replication work (blocking calls release the GIL)."""

    @staticmethod
    def connect(config: ClusterConfig) -> ReplicationPair: ...
    def plan(self, *, allow_restart: bool = False, destructive: bool = False) -> ReplicationPlan: ...
    def apply(
        self,
        plan: ReplicationPlan,
        *,
        progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> ApplyReport:
        """``progress`` gets ``{"event": "step_started"|"step_finished"|"copy", ...}``."""
    def status(self) -> ReplicationStatus: ...
    def verify(self) -> VerifyReport: ...
    def teardown_plan(self) -> ReplicationPlan: ...
    def inventories(self) -> Tuple[Dict[str, Any], Dict[str, Any]]: ...

class ConflictReport:
    """Both replication directions: flowing, failing, disabled or missing; for a stuck one the
    apply worker's error from the subscriber's log (table, key, remote transaction, finish LSN)
    and both versions of the conflicting row."""

    @property
    def any(self) -> bool: ...
    @property
    def stuck(self) -> List[str]:
        """Names of the stuck subscriptions."""
    @property
    def directions(self) -> List[Dict[str, Any]]:
        """Each: from, to, subscriber, subscription, state, reasons, sample, error_count_rise,
        error (severity, kind, message, detail, origin, message_type, relation, remote_xid,
        finish_lsn, key, local_row, remote_row), table, rows (subscriber_row, publisher_row),
        skipped_changes, log_note."""
    def render(self) -> str: ...
    def to_json(self) -> str: ...

class RemedyPlan:
    """A remedy for one stuck subscription: steps with node and exact SQL, the consequence,
    and what will be lost (printed so that nothing is lost silently)."""

    @property
    def subscription(self) -> str: ...
    @property
    def node(self) -> str:
        """The subscriber node."""
    @property
    def remedy(self) -> str:
        """``skip``, ``resync`` or ``fix_row``."""
    @property
    def steps(self) -> List[Dict[str, Any]]:
        """Each: side, node, action, sql, why."""
    @property
    def consequence(self) -> str: ...
    @property
    def lost(self) -> List[str]: ...
    @property
    def conflict(self) -> Dict[str, Any]: ...
    def render(self) -> str: ...
    def to_json(self) -> str: ...

class RemedyOutcome:
    """What ``resolve_conflict`` did and the direction read again."""

    @property
    def resolved(self) -> bool: ...
    @property
    def heartbeat_s(self) -> Optional[float]: ...
    @property
    def rows_copied(self) -> Optional[int]: ...
    @property
    def after(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

def replication_conflicts(
    pair: ReplicationPair, *, sample_interval_s: float = 1.0, read_log: bool = True
) -> ConflictReport:
    """Reads both subscriptions twice ``sample_interval_s`` apart; for a stuck one reads the
    subscriber's server log over SSH (``replication.log_command``) and the conflicting row on
    both nodes."""

def conflict_summary(pair: ReplicationPair) -> Dict[str, Any]:
    """One cheap read per direction: ``{"directions": [{"from", "to", "subscription", "state",
    "apply_error_count", "conflicts_counted"}]}``."""

def plan_resolution(
    pair: ReplicationPair,
    subscription: str,
    *,
    skip: bool = False,
    resync: Optional[str] = None,
    fix_row: bool = False,
) -> RemedyPlan:
    """The plan of exactly one remedy (nothing changes)."""

def resolve_conflict(
    pair: ReplicationPair, plan: RemedyPlan, *, resume_timeout_s: float = 60.0
) -> RemedyOutcome:
    """Runs the plan, waits for a heartbeat from the publisher, reads the direction again."""

class SchemaDrift:
    """Schema drift between the nodes and tables a subscription does not include yet."""

    @property
    def clean(self) -> bool:
        """No drift and nothing to refresh."""
    @property
    def has_drift(self) -> bool: ...
    @property
    def tables(self) -> List[Dict[str, Any]]:
        """``{"table", "changes": [{"kind", ...}]}``; kinds: ``only_on``, ``column_only_on``,
        ``type_changed``, ``nullability_changed``, ``primary_key_changed``,
        ``unique_keys_changed``, ``replica_identity_changed``, ``not_in_publication``."""
    @property
    def subscriptions(self) -> List[Dict[str, Any]]:
        """``{"subscription", "subscriber", "publisher", "exists", "enabled", "missing",
        "absent", "stale"}``."""
    @property
    def refresh_needed(self) -> List[Tuple[str, str]]:
        """``(subscriber node, table)`` for every table a refresh would add."""
    @property
    def findings(self) -> List[str]: ...
    def render(self) -> str: ...
    def to_json(self) -> str: ...

def replication_sequences(config: ClusterConfig) -> Dict[str, Any]:
    """Both nodes' serial/identity columns (``nodes``), ``compliance`` with
    ``[replication.sequences]`` and, with interleave, the dry-run ``plan``."""

def replication_interleave(config: ClusterConfig, *, dry_run: bool = True) -> Dict[str, Any]:
    """Interleaves the sequences (strategy ``interleave``; else ConfigError). Returns
    ``{"applied", "step", "offsets", "changes"}``."""

def replication_drift(config: ClusterConfig) -> SchemaDrift: ...

def replication_refresh(
    config: ClusterConfig, *, dry_run: bool = True, copy_data: bool = False
) -> Dict[str, Any]:
    """``ALTER SUBSCRIPTION … REFRESH PUBLICATION`` on both nodes. Returns ``{"dry_run",
    "copy_data", "subscriptions": [{..., "statement", "done", "note"}]}``; raises
    ReplicationError when a published table is absent on a subscriber."""

class SyncError(FspbxHaError):
    """Syncthing: REST API, pairing, folder problems (messages name node and folder)."""

class SyncUnauthorizedError(SyncError):
    """The Syncthing daemon refused the API key."""

class SyncUnreachableError(SyncError):
    """The Syncthing daemon could not be reached (down, refused, timeout)."""

class SyncTimeoutError(SyncError):
    """wait() ran out of time before every folder was complete."""

class SyncthingClient:
    """Typed REST client for one daemon; the key only travels in X-API-Key."""

    def __init__(self, node: str, url: str, api_key: str) -> None: ...
    @property
    def node(self) -> str: ...
    @property
    def url(self) -> str: ...
    def ping(self) -> None: ...
    def my_id(self) -> str: ...
    def version(self) -> Dict[str, Any]: ...
    def system_status(self) -> Dict[str, Any]: ...
    def connections(self) -> Dict[str, Dict[str, Any]]: ...
    def devices(self) -> List[Dict[str, Any]]: ...
    def put_device(self, device: Dict[str, Any]) -> None: ...
    def patch_device(self, device_id: str, patch: Dict[str, Any]) -> None: ...
    def delete_device(self, device_id: str) -> None: ...
    def folders(self) -> List[Dict[str, Any]]: ...
    def put_folder(self, folder: Dict[str, Any]) -> None: ...
    def patch_folder(self, folder_id: str, patch: Dict[str, Any]) -> None: ...
    def delete_folder(self, folder_id: str) -> None: ...
    def options(self) -> Dict[str, Any]: ...
    def patch_options(self, patch: Dict[str, Any]) -> None: ...
    def pending_devices(self) -> List[Dict[str, Any]]: ...
    def pending_folders(self) -> List[Dict[str, Any]]: ...
    def completion(self, folder: str, device: Optional[str] = None) -> Dict[str, Any]: ...
    def folder_status(self, folder: str) -> Dict[str, Any]: ...
    def folder_errors(self, folder: str) -> List[Dict[str, str]]: ...
    def scan(self, folder: str, sub: Optional[str] = None) -> None: ...
    def events(self, since: int = 0, timeout_s: float = 1.0) -> List[Dict[str, Any]]: ...

class SyncPlan:
    """The pairing plan: devices, then folders, then options."""

    def is_empty(self) -> bool: ...
    @property
    def steps(self) -> List[Dict[str, Any]]: ...
    @property
    def summaries(self) -> List[str]: ...
    @property
    def folders(self) -> List[Dict[str, Any]]: ...
    @property
    def device_ids(self) -> List[str]: ...
    @property
    def sync_addresses(self) -> List[str]: ...
    def to_json(self) -> str: ...
    def __len__(self) -> int: ...

class SyncApplyReport:
    """What SyncPair.apply did."""

    @property
    def applied(self) -> List[Dict[str, Any]]: ...
    @property
    def folders(self) -> List[Dict[str, Any]]: ...
    @property
    def elapsed_s(self) -> float: ...
    def __len__(self) -> int: ...

class SyncStatus:
    """Per folder and direction: completion, needs, errors, connection."""

    @property
    def complete(self) -> bool: ...
    @property
    def connected(self) -> bool: ...
    @property
    def completion(self) -> float: ...
    @property
    def summary(self) -> str: ...
    @property
    def nodes(self) -> List[Dict[str, Any]]: ...
    @property
    def folders(self) -> List[Dict[str, Any]]: ...
    @property
    def conflicts(self) -> List[Dict[str, Any]]: ...
    def to_json(self) -> str: ...

class SyncPair:
    """Both nodes' Syncthing daemons, reached as the configuration says (through SSH by default)."""

    @staticmethod
    def connect(
        config: ClusterConfig,
        ssh: bool = True,
        hardening: bool = True,
        path_prefix: Optional[Tuple[Optional[str], Optional[str]]] = None,
    ) -> SyncPair: ...
    def plan(self) -> SyncPlan: ...
    def apply(self) -> SyncApplyReport: ...
    def status(self) -> SyncStatus: ...
    def wait(
        self,
        timeout_s: float = 600.0,
        progress: Optional[Callable[[str], None]] = None,
        rescan: bool = True,
    ) -> SyncStatus: ...

def pair_status(config: ClusterConfig) -> Dict[str, Any]:
    """The pair at a glance: ``verdict`` (healthy/degraded/broken), ``reasons``, and the parts
    ``floating``, ``replication`` and ``files``, each with ``state`` ok / not_configured /
    unavailable, and ``reachable_slots``: when replication cannot be read as a pair (a node
    down), the answering node's slots with retained WAL and warnings, else None. Blocks; the
    GIL is released."""

class UpgradeError(FspbxHaError):
    """The upgrade stopped: a command or check failed, or the state file belongs to another
    plan. Running ``upgrade()`` again after the fix resumes at the failed step.

    ``failure`` is ``None`` or a dict: for a failed command ``step``, ``node``, ``command``,
    ``status`` (e.g. ``exit status 3``), ``stderr_tail``, ``state_file``, ``fix``; for a failed
    check ``step``, ``node``, ``problems``, ``fix``.
    """

    failure: Optional[Dict[str, Any]]

class UpgradeReport:
    """The outcome of ``upgrade()`` (or of a dry run)."""

    @property
    def dry_run(self) -> bool: ...
    @property
    def finished(self) -> bool:
        """Every step passed."""
    @property
    def resumed(self) -> bool:
        """The run continued one an earlier run recorded in the state file."""
    @property
    def first(self) -> str:
        """The node migrated first."""
    @property
    def step_ids(self) -> List[str]: ...
    @property
    def executed(self) -> List[str]:
        """Steps this run executed."""
    @property
    def skipped(self) -> List[str]:
        """Steps skipped because the state file records them done."""
    @property
    def new_tables(self) -> List[str]:
        """Tables the migration added (``schema.table``)."""
    @property
    def state_file(self) -> str: ...
    @property
    def plan(self) -> Dict[str, Any]:
        """``first``, ``second``, ``fingerprint`` and ``steps`` (``id``, ``node``, ``action``
        with the exact command ``sent``, ``postcondition``, ``why``)."""
    @property
    def steps(self) -> List[Dict[str, Any]]:
        """Each step's ``id``, ``node``, ``result`` (already_done / executed / would_run),
        ``elapsed_s``, ``note``."""
    @property
    def elapsed_s(self) -> float: ...
    def render(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

def upgrade(
    config_path: Union[str, PathLike[str]],
    *,
    dry_run: bool = False,
    first: Optional[str] = None,
    restart: bool = False,
    state_file: Optional[Union[str, PathLike[str]]] = None,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> UpgradeReport:
    """FS PBX's multinode update for the pair in ``config_path``, over SSH: pre-checks, code on
    both nodes, migrate the first, delete-last-batch + migrate the second, refresh subscriptions
    on both, post-checks. Commands come from ``[upgrade]``. Steps recorded done in the state file
    (default ``upgrade-state.json`` next to the configuration) are skipped, so after a failure a
    new call resumes at the failed step; ``restart=True`` starts over. ``dry_run=True`` runs
    nothing. ``first`` names the node migrated first (default ``upgrade.first``: the active
    node). ``progress`` gets one dict per event (``event``: plan_ready, step_started,
    step_running, step_finished). Raises ``UpgradeError`` (with ``failure``). Blocks; the GIL is
    released."""
