"""Settings of the scoring service: the worker, its state store and the read API."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.durations import Duration
from shared.secrets import DEMO_KEY_DIGESTS
from shared.service_keys import StaticKey, parse_keys
from shared.settings import CommonSettings

# faust 0.15 registers rocksdb:// only; it runs on the rocksdict package (PyPI wheel) when that is installed.
_STORES = ("memory://", "rocksdb://")


class ScoringSettings(CommonSettings):
    """Environment of `mews scoring run`; every variable of its own is MEWS_SCORING_<NAME>."""

    # A raw key pasted by mistake where its digest belongs must not be echoed in a start-up error: the common
    # settings hide the input of every error.
    model_config = SettingsConfigDict(**{**CommonSettings.model_config, "env_prefix": "MEWS_SCORING_"})

    port: int = Field(default=8002, ge=1, le=65535)
    # Loopback by default: exposing the API is a deliberate deployment choice (the k8s overlay sets 0.0.0.0).
    host: str = "127.0.0.1"
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description=("Read keys: [name=]<sha256 hex>[:public|restricted|government],... (shared/service_keys.py)"),
    )
    store: str = Field(
        default="memory://",
        description=("faust table store; rocksdb:// (with rocksdict installed) keeps state on a volume"),
    )
    data_dir: Path = Path("var/scoring")
    config_path: Path | None = Field(
        default=None, description=("scoring.toml with rules and weights; the packaged one if unset")
    )
    app_id: str = Field(default="mews-scoring", pattern=r"^[A-Za-z0-9._-]+$")
    replication_factor: int = Field(default=1, ge=1, description="of the changelog topic faust creates")
    lag_interval_seconds: Duration = Field(default=10.0, gt=0)
    commit_interval_seconds: Duration = Field(
        default=1.0, gt=0, description=("how often changed states are persisted and offsets committed")
    )
    snapshot_interval_seconds: Duration = Field(
        default=1.0,
        ge=0,
        description=(
            "at most one indicator snapshot per material this often, besides one with every breach transition; "
            "0: one per input"
        ),
    )
    batch_max_inputs: int = Field(
        default=5000,
        ge=1,
        description=(
            "inputs scored together at most (a batch is what one fetch returned); a material's prices in one batch "
            "are applied at once from 40 on"
        ),
    )
    fetch_max_wait_seconds: Duration = Field(
        default=0.05,
        gt=0,
        description=(
            "longest a fetch waits for new inputs; while one waits, the partitions whose records are still being "
            "scored are not fetched again (faust's own default is 1.5 s)"
        ),
    )
    recovery_check_seconds: Duration = Field(
        default=10.0, gt=0, description=("how often a table restore is checked for being stranded")
    )
    # Static group membership (KIP-345): a worker that restarts under the same instance id gets its partitions
    # back at once, instead of waiting for its dead predecessor's session to expire and the group to rebalance.
    static_membership: bool = True
    group_instance_id: str = Field(
        default="",
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]*$",
        description="unique per worker and kept across its restarts (Kubernetes: the pod "
        "name); empty: <hostname>-<port>",
    )
    # How long the group waits for a silent member: a static member that does not come back holds its
    # partitions this long. 10 s, Kafka's long-time default; the broker refuses less than its minimum (6 s).
    session_timeout_seconds: Duration = Field(default=10.0, ge=1, le=90)

    @field_validator("api_keys")
    @classmethod
    def _keys_parse(cls, value: SecretStr) -> SecretStr:
        parse_keys(value.get_secret_value())
        return value

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(_STORES):
            raise ValueError(f"store must start with one of {', '.join(_STORES)}")
        return value

    @model_validator(mode="after")
    def _refuse_demo_keys(self) -> ScoringSettings:
        if self.is_hardened and any(k.digest in DEMO_KEY_DIGESTS for k in self.read_keys):
            raise ValueError("MEWS_SCORING_API_KEYS holds a demo key, which is public; configure your own")
        return self

    @property
    def read_keys(self) -> tuple[StaticKey, ...]:
        """The configured read keys with their clearances."""
        return parse_keys(self.api_keys.get_secret_value())

    @property
    def instance_id(self) -> str | None:
        """The consumer's group.instance.id, or None for dynamic membership."""
        if not self.static_membership:
            return None
        return self.group_instance_id or f"{socket.gethostname()}-{self.port}"

    @property
    def group_id(self) -> str:
        """The faust app id, which is the consumer group and the prefix of the changelog topic."""
        return f"{self.topic_namespace}.{self.app_id}" if self.topic_namespace else self.app_id
