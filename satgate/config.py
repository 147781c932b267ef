"""satgate.yaml: one validated model for both servers. A bad file refuses to start and names the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from satgate.caveats import BUILTIN
from satgate.control_plane.url import sqlite_file, validate_control_plane_url
from satgate.ledger.url import sqlite_path, validate_ledger_url
from satgate.routes import RouteConfigError, RouteRule, RouteSettings, RouteTable
from satgate.sqlite_db import others_may_write
from satgate.timefmt import parse_duration
from satgate.tls import TlsFiles
from satgate.tokens.identifier import TENANT_RE
from satgate.urls import canonical_host, https_unless_loopback

if TYPE_CHECKING:
    from satgate.audit.chain import AuditLog

DEFAULT_STATE_DIR = Path(".satgate")


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return value


ListenAddress = Annotated[str, AfterValidator(_check_listen)]
UNIX_PREFIX = "unix:"
_UNIX_PATH_MAX = 107  # sun_path's 108 bytes, NUL included


def _check_authz_listen(value: str) -> str:
    """host:port, or unix:/absolute/path for an Envoy on the same host (its `pipe` address)."""
    if not value.startswith(UNIX_PREFIX):
        return _check_listen(value)
    path = value.removeprefix(UNIX_PREFIX)
    if not path.startswith("/"):
        raise ValueError(f"{value!r}: a unix socket needs an absolute path, like unix:/run/satgate/authz.sock")
    if len(path.encode()) > _UNIX_PATH_MAX:
        raise ValueError(f"{value!r}: a unix socket path is at most {_UNIX_PATH_MAX} bytes; choose a shorter one")
    return value


AuthzListenAddress = Annotated[str, AfterValidator(_check_authz_listen)]
LedgerUrl = Annotated[str, AfterValidator(validate_ledger_url)]
ControlPlaneUrl = Annotated[str, AfterValidator(validate_control_plane_url)]


class RouteMatchConfig(_Strict):
    host: str | None = None
    path_prefix: str = "/"
    methods: list[Annotated[str, Field(pattern=r"^[A-Z]{1,16}$")]] | None = None

    @field_validator("path_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class RouteRuleConfig(_Strict):
    match: RouteMatchConfig = RouteMatchConfig()
    settings: dict[str, str]

    @field_validator("settings")
    @classmethod
    def _valid_settings(cls, value: dict[str, str]) -> dict[str, str]:
        try:
            RouteSettings.from_mapping(value)
        except RouteConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value


class UsageConfig(_Strict):
    enabled: bool = True
    path: Path = Path("usage.db")  # in state_dir unless set
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 30


Price = Annotated[int, Field(ge=0, le=10**15)]


class PricingTableConfig(_Strict):
    """Credits per MCP call: tools by name (exact, longest `prefix*`, `*`), other methods likewise, else default."""

    tools: dict[str, Price] = {}
    methods: dict[str, Price] = {}
    default: Price = 1


class TlsConfig(_Strict):
    """TLS 1.2+ from a certificate (chain) and key; with client_ca_file, clients must present a certificate that
    CA issued (mTLS). The files are reloaded when they change."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def files(self, setting: str) -> TlsFiles:
        return TlsFiles(self.cert_file, self.key_file, self.client_ca_file, setting=setting)


class AuthzConfig(_Strict):
    # grpc: Envoy's grpc_service on `listen`; http: its http_service on `http_listen`; both: each on its own.
    transport: Literal["grpc", "http", "both"] = "grpc"
    listen: AuthzListenAddress = "127.0.0.1:9191"  # or unix:/path (Envoy's `pipe` address)
    http_listen: AuthzListenAddress = "127.0.0.1:9192"
    tls: TlsConfig | None = None  # both transports' TCP listeners (a unix socket is guarded by its file mode)
    # The mode of unix: listener files, set as they are created (never the umask's): Envoy's group may connect
    socket_mode: Annotated[str, Field(pattern=r"^0?[0-7]{3}$")] = "0660"
    metrics_listen: ListenAddress | None = None  # Prometheus /metrics over HTTP; off unless set
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    leeway_seconds: Annotated[float, Field(ge=0, le=600)] = 30.0
    default_cost: Annotated[int, Field(ge=0, le=10**15)] = 1
    tenants: list[str] | None = None
    attributes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]] = []
    routes: list[RouteRuleConfig] = []
    token_cache_size: Annotated[int, Field(ge=0, le=10_000_000)] = 16384
    usage: UsageConfig = UsageConfig()
    # Pricing tables for MCP routes, chosen by the route's `pricing` key ("default" when absent).
    pricing: dict[str, PricingTableConfig] = {
        "default": PricingTableConfig(methods={"initialize": 0, "notifications/*": 0, "tools/list": 0, "ping": 0})
    }
    decision_log: Literal["all", "deny", "none"] = "deny"  # allows are in Envoy's access log already
    # observe: every route decides and records but always allows (a route's own `mode` setting wins)
    mode: Literal["enforce", "observe"] = "enforce"
    observe_debit: bool = True  # observed requests are debited as they would be; false: judged read-only
    # Fractions of a bucket's limit whose crossing raises one budget_threshold audit event per bucket and window.
    budget_thresholds: list[Annotated[float, Field(gt=0, le=1)]] = [0.8, 1.0]

    def threshold_permille(self) -> tuple[int, ...]:
        return tuple(sorted({round(fraction * 1000) or 1 for fraction in self.budget_thresholds}))

    def served_listeners(self) -> dict[str, str]:
        """The listen settings this transport serves, by their full name (what is claimed, bound and released)."""
        served = {}
        if self.transport in ("grpc", "both"):
            served["authz.listen"] = self.listen
        if self.transport in ("http", "both"):
            served["authz.http_listen"] = self.http_listen
        return served

    @model_validator(mode="after")
    def _distinct_listeners(self) -> AuthzConfig:
        if self.transport == "both" and self.listen == self.http_listen:
            raise ValueError(f"http_listen: {self.http_listen} is also authz.listen; give each transport its port")
        for setting, address in self.served_listeners().items():
            if address.startswith(UNIX_PREFIX) and self.workers > 1:
                raise ValueError(
                    f"{setting}: {address} is served by one process (workers share TCP ports only); set "
                    "authz.workers: 1, or listen on host:port"
                )
            if address.startswith(UNIX_PREFIX) and self.tls is not None:
                raise ValueError(
                    f"authz.tls: {setting} is {address}, a unix socket, which carries no TLS (its file mode guards "
                    "it: authz.socket_mode); drop authz.tls, or listen on host:port"
                )
        return self

    @field_validator("tenants")
    @classmethod
    def _valid_tenants(cls, value: list[str] | None) -> list[str] | None:
        for tenant in value or ():
            if not TENANT_RE.fullmatch(tenant):
                raise ValueError(f"{tenant!r} is not a tenant name ([a-z0-9][a-z0-9-]{{0,62}})")
        return value

    @field_validator("attributes")
    @classmethod
    def _not_builtin(cls, value: list[str]) -> list[str]:
        clash = sorted(set(value) & set(BUILTIN))
        if clash:
            raise ValueError(f"{', '.join(clash)} are built-in caveat keys, not attributes")
        return value

    def route_table(self) -> RouteTable:
        return RouteTable(
            [
                RouteRule(
                    settings=dict(rule.settings),
                    path_prefix=rule.match.path_prefix,
                    host=canonical_host(rule.match.host) if rule.match.host else None,
                    methods=frozenset(rule.match.methods) if rule.match.methods else None,
                )
                for rule in self.routes
            ]
        )


def _duration(text: str) -> str:
    parse_duration(text)
    return text


class AwsConfig(_Strict):
    """sts:GetCallerIdentity exchange. Off until server_id is set: it binds presigned requests to this Mint."""

    sts_endpoint: Annotated[str, AfterValidator(https_unless_loopback)] = "https://sts.amazonaws.com/"
    server_id_header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")] = "X-Satgate-Server-ID"
    server_id: str | None = None
    max_clock_skew_seconds: Annotated[int, Field(ge=1, le=3600)] = 300


class WebhookConfig(_Strict):
    url: Annotated[str, AfterValidator(https_unless_loopback)]
    secret: str | None = None
    secret_env: str | None = None  # read the secret from this environment variable
    format: Literal["json", "slack", "discord"] = "json"
    events: list[str] | None = None  # default: every event
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookConfig:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret and secret_env")
        if self.events is not None:
            from satgate.audit import EVENT_TYPES  # noqa: PLC0415 - avoids an import cycle at module load

            unknown = sorted(set(self.events) - set(EVENT_TYPES))
            if unknown:
                raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        return self

    def resolved_secret(self) -> str:
        """Read when the Mint starts (`missing_webhook_secrets` names an unset variable first), not when the
        config loads: a command that sends no webhooks must not need the Mint's environment."""
        return self.secret if self.secret is not None else os.environ[self.secret_env or ""]


class SharedIssuerConfig(_Strict):
    """An issuer several tenants use (one Kubernetes cluster, GitHub Actions): the platform admin names its key
    source and, per tenant, the claims that tenant's identities carry (a trust rule's `match`: namespace,
    service_account, claims). Validated by the Mint, which owns the matching."""

    issuer: Annotated[str, AfterValidator(https_unless_loopback)]
    jwks_uri: Annotated[str, AfterValidator(https_unless_loopback)] | None = None
    ca_file: Path | None = None
    bearer_token_file: Path | None = None
    tenants: Annotated[dict[str, dict[str, Any]], Field(min_length=1)]

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for tenant, claims in value.items():
            if not TENANT_RE.fullmatch(tenant):
                raise ValueError(f"{tenant!r} is not a tenant name ([a-z0-9][a-z0-9-]{{0,62}})")
            if not claims and len(value) > 1:
                raise ValueError(f"{tenant}: assign the claims its identities carry (e.g. namespace: [team-a-*])")
        return value


class MintConfig(_Strict):
    listen: ListenAddress = "127.0.0.1:8081"
    tls: TlsConfig | None = None  # HTTP and gRPC, the admin listeners too
    grpc_listen: ListenAddress = "127.0.0.1:8082"
    # The admin API on its own listeners (HTTP, gRPC), for a NetworkPolicy to fence; unset: beside the exchange.
    admin_listen: ListenAddress | None = None
    admin_grpc_listen: ListenAddress | None = None
    policies: Path | None = None  # trust policies: a YAML file or a directory of them, reloaded when they change
    default_tenant: str | None = None  # the tenant of a policy that names none
    shared_issuers: list[SharedIssuerConfig] = []  # issuers several tenants use, each tenant its assigned claims
    require_scopes: bool = False  # a trust rule without issue.scopes refuses to load (else: a warning)
    audit_log: Path = Path("audit.db")  # in state_dir unless set
    max_ttl: Annotated[str, AfterValidator(_duration)] = "24h"
    rate_limit_per_minute: Annotated[int, Field(ge=0, le=100_000)] = 60  # per identity; 0 = off
    policy_reload_seconds: Annotated[float, Field(gt=0, le=300)] = 1.0
    jwks_refetch_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    # Exchange refusals before an identity verified are audited once per this interval, per source and reason.
    refusal_audit_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Audit records older than this are removed hourly, after a signed checkpoint (satgate audit prune).
    audit_retention_days: Annotated[float, Field(ge=1, le=36500)] = 90
    aws: AwsConfig = AwsConfig()
    webhooks: list[WebhookConfig] = []

    @field_validator("default_tenant")
    @classmethod
    def _tenant_name(cls, value: str | None) -> str | None:
        if value is not None and not TENANT_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a tenant name ([a-z0-9][a-z0-9-]{{0,62}})")
        return value

    @model_validator(mode="after")
    def _distinct_listeners(self) -> MintConfig:
        seen: dict[str, str] = {}
        for setting in ("listen", "grpc_listen", "admin_listen", "admin_grpc_listen"):
            address = getattr(self, setting)
            if address is None:
                continue
            if address in seen:
                raise ValueError(f"mint.{setting}: {address} is also mint.{seen[address]}; give each its own port")
            seen[address] = setting
        return self


class TracingConfig(_Strict):
    # OpenTelemetry spans over OTLP/HTTP (a collector's /v1/traces); tracing is off unless set
    otlp_endpoint: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0  # of traces that arrive unsampled or without a parent


class Config(_Strict):
    # Every state file not set explicitly lives here (relative: to the config file's directory).
    state_dir: Path = DEFAULT_STATE_DIR
    keyring: Path = Path("keyring.json")  # in state_dir unless set
    keyring_group_readable: bool = False  # true for a Kubernetes Secret volume with fsGroup (mode 0440)
    ledger: LedgerUrl = "sqlite:///ledger.db"  # in state_dir unless set
    # What Mint replicas share (delegation tree, revoked policies, ...): SQLite on one host, PostgreSQL for several.
    control_plane: ControlPlaneUrl = "sqlite:///mint.db"  # in state_dir unless set
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    authz: AuthzConfig = AuthzConfig()
    mint: MintConfig = MintConfig()
    tracing: TracingConfig = TracingConfig()

    @model_validator(mode="after")
    def _routes_need_attributes(self) -> Config:
        declared = set(self.authz.attributes)
        for index, rule in enumerate(self.authz.routes):
            for key in rule.settings:
                if key.startswith("require.") and key.removeprefix("require.") not in declared:
                    raise ValueError(f"authz.routes.{index}.settings.{key}: attribute is not in authz.attributes")
        return self

    def resolved(self, base: Path, state_dir: Path | None = None) -> Config:
        """Absolute paths everywhere: a path the file sets is relative to the file's directory (`base`), one it
        leaves out lives in `state_dir` — never relative to wherever the command was started. `state_dir`
        (from `--state-dir`) replaces the file's own."""
        state = (state_dir if state_dir is not None else base / self.state_dir).resolve()

        def place(model: BaseModel, name: str) -> Path:
            value: Path = getattr(model, name)
            return (base / value).resolve() if name in model.model_fields_set else state / value

        def place_sqlite(name: str) -> str:
            url: str = getattr(self, name)
            if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
                return url
            root = base if name in self.model_fields_set else state
            return f"sqlite:///{(root / url.removeprefix('sqlite:///')).resolve()}"

        mint = self.mint.model_copy(
            update={
                "policies": (base / self.mint.policies).resolve() if self.mint.policies else None,
                "audit_log": place(self.mint, "audit_log"),
            }
        )
        usage = self.authz.usage.model_copy(update={"path": place(self.authz.usage, "path")})
        authz = self.authz.model_copy(update={"usage": usage})
        return self.model_copy(
            update={
                "state_dir": state,
                "keyring": place(self, "keyring"),
                "ledger": place_sqlite("ledger"),
                "control_plane": place_sqlite("control_plane"),
                "mint": mint,
                "authz": authz,
            }
        )

    def exposed_state_files(self) -> list[str]:
        """One line per state file that others may write (checked by the servers at start), naming the setting."""
        files = {
            "keyring": self.keyring,
            "mint.audit_log": self.mint.audit_log,
            "authz.usage.path": self.authz.usage.path,
        }
        if self.ledger.startswith("sqlite:"):
            files["ledger"] = sqlite_path(self.ledger)[0]
        if (control_plane := sqlite_file(self.control_plane)) is not None:
            files["control_plane"] = control_plane
        return [f"{setting}: {problem}" for setting, path in files.items() if (problem := others_may_write(path))]

    def open_audit_log(self) -> AuditLog:
        """The audit chain this deployment keeps (satgate.audit.open_audit_log chooses by these settings)."""
        from satgate.audit import open_audit_log  # noqa: PLC0415 - the audit package reads the config's catalogue

        return open_audit_log(self.ledger, self.mint.audit_log, self.control_plane)

    def missing_webhook_secrets(self) -> list[str]:
        """One line per webhook whose `secret_env` is unset, naming the field: checked by the Mint at start."""
        return [
            f"mint.webhooks.{index}.secret_env: environment variable {hook.secret_env} is not set; set it to the "
            "webhook's signing secret"
            for index, hook in enumerate(self.mint.webhooks)
            if hook.secret_env is not None and not os.environ.get(hook.secret_env)
        ]


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


LEDGER_ENV = "SATGATE_LEDGER"  # overrides `ledger`: a Redis URL with a password belongs in a Secret, not a ConfigMap
CONTROL_PLANE_ENV = "SATGATE_CONTROL_PLANE"  # overrides `control_plane`: a PostgreSQL URL with its password
_FROM_ENV = {
    "ledger": (LEDGER_ENV, validate_ledger_url),
    "control_plane": (CONTROL_PLANE_ENV, validate_control_plane_url),
}


def _urls_from_env(doc: dict, source: str) -> dict:
    for setting, (variable, validate) in _FROM_ENV.items():
        url = os.environ.get(variable)
        if not url:
            continue
        try:
            validate(url)
        except ValueError as exc:
            password = urlsplit(url).password
            detail = str(exc).replace(password, "***") if password else str(exc)  # it came from a Secret
            raise ConfigError(f"{source}: invalid configuration\n  {setting} (from {variable}): {detail}") from None
        doc = {**doc, setting: url}
    return doc


def load_config(path: str | os.PathLike[str] | None, *, state_dir: str | os.PathLike[str] | None = None) -> Config:
    """No path: embedded defaults (state in ./.satgate, or in `state_dir`). SATGATE_LEDGER and
    SATGATE_CONTROL_PLANE, when set, replace `ledger` and `control_plane`. `state_dir` (relative to the working
    directory, as a command-line option is) replaces the file's."""
    override = Path(state_dir).resolve() if state_dir is not None else None
    if path is None:
        return Config.model_validate(_urls_from_env({}, "defaults")).resolved(Path.cwd(), override)
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    doc = _urls_from_env(doc, str(p))
    try:
        return Config.model_validate(doc).resolved(p.parent.resolve(), override)
    except ValidationError as exc:
        raise ConfigError(_format_errors(str(p), exc)) from None
