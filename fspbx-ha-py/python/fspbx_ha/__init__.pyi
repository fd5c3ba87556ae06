from ._native import (
    CheckItem as CheckItem,
    CheckReport as CheckReport,
    ClusterConfig as ClusterConfig,
    ConfigError as ConfigError,
    FspbxHaError as FspbxHaError,
    LocalIoError as LocalIoError,
    Node as Node,
    PostgresError as PostgresError,
    SecretError as SecretError,
    SshError as SshError,
    __version__ as __version__,
    check as check,
)
