"""Octrix's core for Python (native module; import ``octrix`` instead)."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, final

import numpy
import numpy.typing

from octrix._enums import (
    BalancingStrategy,
    BreakerState,
    CallOutcome,
    Category,
    Direction,
    IncidentStatus,
    IngestOutcome,
    IstioApiVersion,
    Severity,
)

_T = TypeVar("_T")

__all__ = [
    "OctrixError",
    "ConfigError",
    "ValidationError",
    "RejectedSampleError",
    "SeriesLimitError",
    "UnknownSeriesError",
    "UnknownIncidentError",
    "IllegalTransitionError",
    "UnknownEndpointError",
    "NoHealthyEndpointError",
    "CircuitOpenError",
    "ChaosError",
    "Detection",
    "DetectionBatch",
    "WindowedZScore",
    "DetectorBank",
    "Classifier",
    "Incident",
    "Ingested",
    "IncidentPage",
    "IncidentBook",
    "severity_from_label",
    "HealingRules",
    "TrafficRule",
    "Pick",
    "LoadBalancer",
    "ManualClock",
    "CircuitBreaker",
    "CallPermit",
    "ChaosScenario",
]

# ---------------------------------------------------------------- exceptions

class OctrixError(Exception):
    """The base of every exception Octrix raises."""

class ConfigError(OctrixError, ValueError):
    """A configuration field is out of range or malformed; ``field`` names it."""

    field: str | None
    errors: list[tuple[str, str]]

class ValidationError(OctrixError, ValueError):
    """Input data is malformed or invalid; ``field`` names the (first) offending
    field and ``errors`` lists every (field, message) found."""

    field: str | None
    errors: list[tuple[str, str]]

class RejectedSampleError(OctrixError, ValueError):
    """A sample was NaN, infinite or beyond ±1e150; it was counted and skipped."""

    value: float

class SeriesLimitError(OctrixError):
    """A DetectorBank already holds ``max_series`` series and refused ``series``."""

    max_series: int
    series: str

class UnknownSeriesError(OctrixError, KeyError):
    """A DetectorBank does not hold the series (it was evicted)."""

class UnknownIncidentError(OctrixError, KeyError):
    """No incident has this id."""

    incident_id: str

class IllegalTransitionError(OctrixError):
    """The incident's status does not allow the change."""

    incident_id: str
    from_status: str | None
    to_status: str | None

class UnknownEndpointError(OctrixError, KeyError):
    """The address is not one of the load balancer's endpoints."""

    address: str

class NoHealthyEndpointError(OctrixError):
    """Every endpoint of the load balancer is unhealthy (or it has none)."""

    total: int

class CircuitOpenError(OctrixError):
    """A circuit breaker rejected the call."""

    service: str
    state: str
    retry_at: datetime | None

class ChaosError(OctrixError):
    """A chaos request the core refused."""

# ----------------------------------------------------------------- detection

@final
class Detection:
    """A detector's verdict on one sample."""

    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    @property
    def score(self) -> float:
        """How anomalous the sample is, in [0, 1]."""
    @property
    def z(self) -> float:
        """Signed distance from the window's mean in standard deviations."""
    @property
    def direction(self) -> Direction:
        """Which side of the window's mean the sample lies on."""
    @property
    def is_anomaly(self) -> bool:
        """Whether ``|z|`` exceeds the detector's sensitivity."""
    @property
    def confidence(self) -> float:
        """``min(0.5 + |z| / 10, 1)``; 0 while the detector warms up."""
    @property
    def judged(self) -> bool:
        """Whether the detector judged the sample (False during warm-up)."""
    def to_dict(self) -> dict[str, Any]:
        """The detection as a dict (``direction`` as its str value)."""

@final
class DetectionBatch:
    """The verdicts on a batch of samples."""

    def __len__(self) -> int: ...
    @property
    def judged(self) -> int:
        """How many samples were judged (warm-up and rejected ones aside)."""
    @property
    def anomaly_count(self) -> int:
        """How many samples were anomalous."""
    @property
    def anomaly_indices(self) -> list[int]:
        """Positions of the anomalous samples, ascending."""
    def anomaly_index_array(self) -> numpy.typing.NDArray[numpy.int64]:
        """Positions of the anomalous samples, ascending, as a numpy int64 array."""
    @property
    def anomalies(self) -> list[tuple[int, Detection]]:
        """``(position, Detection)`` of every anomalous sample, ascending."""
    @property
    def rejected(self) -> list[int]:
        """Positions of the samples rejected as NaN, infinite or out of range."""
    def z_scores(self) -> numpy.typing.NDArray[numpy.float64]:
        """Every sample's z-score as a numpy array (NaN where not judged).

        For ``DetectorBank.observe_many`` the array the z-scores were written
        into (every call returns the same array); otherwise a new array.
        """
    def z_list(self) -> list[float]:
        """Every sample's z-score as a list (NaN where not judged or rejected)."""

_Samples = Sequence[float] | numpy.typing.NDArray[numpy.float64] | memoryview | Any

@final
class WindowedZScore:
    """Judges each sample by its z-score against the ``window`` samples before it."""

    def __new__(
        cls, window: int = 20, sensitivity: float = 2.5, min_samples: int | None = None
    ) -> WindowedZScore: ...
    def observe(self, value: float) -> Detection:
        """Judges ``value``, then adds it to the window."""
    def observe_many(self, values: _Samples) -> DetectionBatch:
        """Judges every sample of ``values`` in order, with the GIL released."""
    @property
    def rejected(self) -> int:
        """How many samples were rejected so far."""
    @property
    def window(self) -> int:
        """How many past samples each sample is judged against."""
    @property
    def sensitivity(self) -> float:
        """How many standard deviations make a sample anomalous."""
    @property
    def min_samples(self) -> int:
        """How many samples the window must hold before the detector judges."""
    @property
    def mean(self) -> float | None:
        """Mean of the samples in the window."""
    @property
    def std(self) -> float | None:
        """Population standard deviation of the window."""

@final
class DetectorBank:
    """One windowed z-score detector per series (metric name plus labels)."""

    def __new__(cls, config: Mapping[str, Any] | None = None) -> DetectorBank: ...
    @staticmethod
    def from_yaml(text: str) -> DetectorBank:
        """A bank configured by a YAML document."""
    @staticmethod
    def from_toml(text: str) -> DetectorBank:
        """A bank configured by a TOML document."""
    def observe(
        self,
        metric: str,
        labels: Mapping[str, str],
        value: float,
        at: datetime | None = None,
    ) -> Detection:
        """Judges ``value`` of series ``metric{labels}``, then learns it."""
    def observe_many(
        self,
        metric: str,
        labels: Mapping[str, str],
        values: _Samples,
        at: datetime | None = None,
        threads: int | None = None,
        out: numpy.typing.NDArray[numpy.float64] | None = None,
    ) -> DetectionBatch:
        """Judges every sample of ``values`` for one series, GIL released.

        Long batches run the core's block kernel on up to ``threads`` threads
        (default: the machine's cores), writing z-scores straight into
        ``out`` (a writeable float64 array as long as ``values``) or a new
        array: the one ``z_scores()`` returns.
        """
    def contains(self, metric: str, labels: Mapping[str, str]) -> bool:
        """Whether the bank holds series ``metric{labels}``."""
    def evict_idle(self, now: datetime | None = None) -> int:
        """Evicts every series idle for longer than ``idle_ttl``; returns how many."""
    def __len__(self) -> int: ...
    @property
    def counters(self) -> dict[str, int]:
        """Series created and evicted, new series refused, samples rejected."""
    @property
    def config(self) -> dict[str, Any]:
        """The configuration, as a dict."""
    def bytes_per_series(self, metric: str) -> int:
        """Bytes one series of ``metric`` occupies, key aside."""

# ------------------------------------------------------------ classification

@final
class Classifier:
    """Grades cluster observations against a severity policy."""

    def __new__(cls, policy: Mapping[str, Any] | None = None) -> Classifier: ...
    @staticmethod
    def from_yaml(text: str) -> Classifier:
        """A classifier whose policy is a YAML document."""
    def observe(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Grades one observation; returns the resulting classifications."""
    @property
    def rejected_readings(self) -> int:
        """Readings rejected as non-finite or out of range so far."""
    @property
    def tracked(self) -> int:
        """How many (resource, category) streaks are tracked."""
    @property
    def policy(self) -> dict[str, Any]:
        """The policy as a dict."""

def severity_from_label(label: str) -> Severity | None:
    """The severity an Alertmanager ``severity`` label stands for, or None."""

# ----------------------------------------------------------------- incidents

@final
class Incident:
    """One incident: identity, lifecycle and timeline (a snapshot)."""

    @property
    def id(self) -> str:
        """Identifier, e.g. ``INC-000001``."""
    @property
    def title(self) -> str:
        """One line for people."""
    @property
    def description(self) -> str | None:
        """Longer text: the alert's ``description``."""
    @property
    def category(self) -> Category:
        """What kind of problem."""
    @property
    def severity(self) -> Severity:
        """How bad, now."""
    @property
    def status(self) -> IncidentStatus:
        """Lifecycle status."""
    @property
    def service(self) -> str | None:
        """The affected service."""
    @property
    def environment(self) -> str | None:
        """The environment."""
    @property
    def namespace(self) -> str | None:
        """The Kubernetes namespace."""
    @property
    def labels(self) -> dict[str, str]:
        """The source's labels."""
    @property
    def assignee(self) -> str | None:
        """Who owns it."""
    @property
    def runbook_url(self) -> str | None:
        """Where the runbook is."""
    @property
    def generator_url(self) -> str | None:
        """Link back to what produced the alert."""
    @property
    def fingerprint(self) -> str:
        """Identity used for deduplication."""
    @property
    def occurrences(self) -> int:
        """How many times the problem started."""
    @property
    def first_seen(self) -> datetime:
        """When the book opened the incident (UTC)."""
    @property
    def last_seen(self) -> datetime:
        """When the book last heard of it (UTC)."""
    @property
    def occurrence_started_at(self) -> datetime:
        """When the current occurrence began at its source (UTC)."""
    @property
    def acknowledged_at(self) -> datetime | None:
        """The latest acknowledgement (UTC)."""
    @property
    def resolved_at(self) -> datetime | None:
        """The latest resolution (UTC)."""
    @property
    def correlation_group(self) -> str:
        """The id of the correlation group's first incident."""
    @property
    def is_active(self) -> bool:
        """Whether it is open or acknowledged."""
    @property
    def time_to_acknowledge(self) -> timedelta | None:
        """From opening to the first acknowledgement."""
    @property
    def time_to_resolve(self) -> timedelta | None:
        """From opening to the first resolution."""
    @property
    def timeline(self) -> list[dict[str, Any]]:
        """Everything that happened to it, oldest first."""
    def to_dict(self) -> dict[str, Any]:
        """The incident as a dict (timestamps as UTC datetimes)."""

@final
class Ingested:
    """What ingesting one alert did."""

    @property
    def outcome(self) -> IngestOutcome:
        """What happened."""
    @property
    def incident_id(self) -> str | None:
        """The incident concerned, None when ignored."""
    @property
    def reason(self) -> str | None:
        """Why nothing changed, for an ignored resolution."""
    @property
    def fingerprint(self) -> str:
        """The alert's fingerprint."""

@final
class IncidentPage:
    """One page of a listing."""

    @property
    def items(self) -> list[Incident]:
        """The incidents on this page."""
    @property
    def total(self) -> int:
        """How many incidents matched in all."""
    @property
    def offset(self) -> int:
        """The query's offset."""
    @property
    def limit(self) -> int:
        """The query's limit."""
    def __len__(self) -> int: ...

@final
class IncidentBook:
    """Incidents and the rules that drive them."""

    def __new__(cls, config: Mapping[str, Any] | None = None) -> IncidentBook: ...
    def ingest_alertmanager(
        self, payload: Mapping[str, Any], now: datetime | None = None
    ) -> list[Ingested]:
        """Ingests an Alertmanager webhook payload (version 4)."""
    def ingest_alert(
        self, alert: Mapping[str, Any], now: datetime | None = None
    ) -> Ingested:
        """Ingests one alert in the webhook's form."""
    def acknowledge(
        self,
        incident_id: str,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """Marks an open incident as being worked on by ``actor``."""
    def resolve(
        self,
        incident_id: str,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """Resolves an open or acknowledged incident."""
    def reopen(
        self,
        incident_id: str,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """Reopens a resolved incident."""
    def assign(
        self,
        incident_id: str,
        assignee: str,
        actor: str,
        now: datetime | None = None,
    ) -> Incident:
        """Gives the incident to ``assignee``."""
    def add_note(
        self,
        incident_id: str,
        actor: str,
        text: str,
        now: datetime | None = None,
    ) -> Incident:
        """Adds a note to the incident's timeline."""
    def get(self, incident_id: str) -> Incident | None:
        """The incident with this id, or None."""
    def __getitem__(self, key: str, /) -> Incident: ...
    def __contains__(self, key: str, /) -> bool: ...
    def __len__(self) -> int: ...
    def incidents(self) -> list[Incident]:
        """Every incident, in opening order."""
    def group(self, incident_id: str) -> list[Incident]:
        """The incidents correlated with ``incident_id`` (itself included)."""
    def query(
        self,
        *,
        status: str | Iterable[str] | None = None,
        severity: str | Iterable[str] | None = None,
        category: str | Iterable[str] | None = None,
        service: str | None = None,
        environment: str | None = None,
        text: str | None = None,
        opened_from: datetime | None = None,
        opened_until: datetime | None = None,
        sort: str = "last_seen",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> IncidentPage:
        """One page of the incidents matching every given filter."""
    def stats(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, Any]:
        """Counts, MTTA and MTTR of the incidents opened in ``[start, end)``."""

# ------------------------------------------------------------------- healing

@final
class HealingRules:
    """A validated healing rule set, for evaluation without acting."""

    def __new__(cls, config: Mapping[str, Any] | None = None) -> HealingRules: ...
    @staticmethod
    def from_yaml(text: str) -> HealingRules:
        """A rule set from a YAML document."""
    @staticmethod
    def from_toml(text: str) -> HealingRules:
        """A rule set from a TOML document."""
    def matching_rules(
        self,
        incident: Incident | Mapping[str, Any],
        cluster: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Names of the enabled rules that match, highest priority first."""
    def plan(
        self,
        incident: Incident | Mapping[str, Any],
        cluster: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """What a fresh planner decides first for ``incident``."""
    def dry_run(
        self,
        incident: Incident | Mapping[str, Any],
        cluster: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Every decision the planner would take if no action helped."""
    @property
    def rule_names(self) -> list[str]:
        """Names of the rules, in file order."""
    def to_dict(self) -> dict[str, Any]:
        """The rule set as a dict."""

# ------------------------------------------------------------------- routing

@final
class TrafficRule:
    """How the traffic of one service is split between its versions."""

    def __new__(cls, rule: Mapping[str, Any]) -> TrafficRule: ...
    @staticmethod
    def from_yaml(text: str) -> TrafficRule:
        """A rule from a YAML document."""
    @staticmethod
    def weighted(service: str, namespace: str, weights: Mapping[str, int]) -> TrafficRule:
        """A plain weighted split of ``service`` in ``namespace``."""
    def validate(self) -> None:
        """Checks every field; raises ValidationError listing all problems."""
    @property
    def service(self) -> str:
        """The service whose traffic is split."""
    @property
    def namespace(self) -> str:
        """The namespace of the service and of the generated objects."""
    @property
    def weights(self) -> list[tuple[str, int]]:
        """Subset and weight, in the rule's order."""
    def to_istio(
        self, api_version: IstioApiVersion | str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The VirtualService and the DestinationRule as dicts."""
    def virtual_service(
        self, api_version: IstioApiVersion | str | None = None
    ) -> dict[str, Any]:
        """The VirtualService as a dict."""
    def destination_rule(
        self, api_version: IstioApiVersion | str | None = None
    ) -> dict[str, Any]:
        """The DestinationRule as a dict."""
    def to_yaml(self, api_version: IstioApiVersion | str | None = None) -> str:
        """Both objects as one YAML stream."""
    def to_json(self, api_version: IstioApiVersion | str | None = None) -> str:
        """Both objects as a Kubernetes ``List`` in JSON."""
    def to_dict(self) -> dict[str, Any]:
        """The rule itself as a dict."""
    def rule_yaml(self) -> str:
        """The rule itself as YAML."""

@final
class Pick:
    """A picked endpoint; complete it, or use it as a context manager."""

    @property
    def address(self) -> str:
        """The endpoint's address."""
    @property
    def index(self) -> int:
        """The endpoint's position in the balancer's list."""
    def __enter__(self) -> str: ...
    def __exit__(self, *_exc: object) -> bool: ...

_Endpoints = Iterable[str | tuple[str, int] | Mapping[str, Any]]

@final
class LoadBalancer:
    """A client-side load balancer over the endpoints of one service."""

    def __new__(
        cls,
        endpoints: _Endpoints,
        strategy: BalancingStrategy | str | None = None,
        seed: int | None = None,
    ) -> LoadBalancer: ...
    def pick(self) -> Pick:
        """Chooses a healthy endpoint."""
    def complete(self, pick: Pick) -> None:
        """Marks a picked request as finished (a pick of this balancer)."""
    def set_health(self, address: str, healthy: bool) -> bool:
        """Marks an endpoint healthy or unhealthy; returns whether that changed."""
    def set_weight(self, address: str, weight: int) -> None:
        """Sets an endpoint's weight (at least 1)."""
    def replace_endpoints(self, endpoints: _Endpoints) -> None:
        """Replaces the endpoints."""
    @property
    def strategy(self) -> BalancingStrategy:
        """The strategy in use."""
    @strategy.setter
    def strategy(self, strategy: BalancingStrategy | str) -> None: ...
    def status(self) -> list[dict[str, Any]]:
        """Every endpoint's state, in order."""
    @property
    def healthy_count(self) -> int:
        """Number of healthy endpoints."""

# ---------------------------------------------------------------- resilience

@final
class ManualClock:
    """A clock that only moves when told to."""

    def __new__(cls, start: datetime | None = None) -> ManualClock: ...
    def now(self) -> datetime:
        """The clock's time, a UTC datetime."""
    def advance(self, delta: timedelta) -> None:
        """Moves the clock by ``delta``."""
    def set(self, to: datetime) -> None:
        """Sets the clock to ``to``."""

@final
class CallPermit:
    """Leave to make one call through a CircuitBreaker."""

    def record(self, outcome: CallOutcome | str) -> bool:
        """Records the outcome; False if it was already recorded."""
    def success(self) -> bool:
        """Records a successful call."""
    def failure(self) -> bool:
        """Records a failed call."""
    def ignore(self) -> bool:
        """Records a call that counts neither way."""
    @property
    def is_trial(self) -> bool:
        """Whether this is a half-open trial call."""
    @property
    def pending(self) -> bool:
        """Whether the outcome is still to be recorded."""
    def __enter__(self) -> CallPermit: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc_value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> bool: ...

@final
class CircuitBreaker:
    """A circuit breaker for one service."""

    def __new__(
        cls,
        service: str,
        config: Mapping[str, Any] | None = None,
        clock: ManualClock | None = None,
    ) -> CircuitBreaker: ...
    def acquire(self) -> CallPermit:
        """Asks to make one call; raises CircuitOpenError when rejected."""
    def call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Calls ``function(*args, **kwargs)`` through the breaker."""
    @property
    def state(self) -> BreakerState:
        """The current state."""
    @property
    def service(self) -> str:
        """The protected service."""
    @property
    def config(self) -> dict[str, Any]:
        """The configuration, as a dict."""
    def reset(self) -> None:
        """Closes the breaker and empties its window."""
    def force_open(self) -> None:
        """Opens the breaker now."""
    def snapshot(self) -> dict[str, Any]:
        """State and window now."""
    def drain_transitions(self) -> list[dict[str, Any]]:
        """The state changes since the last drain, oldest first."""

# --------------------------------------------------------------------- chaos

@final
class ChaosScenario:
    """A validated chaos scenario."""

    def __new__(cls, scenario: Mapping[str, Any]) -> ChaosScenario: ...
    @staticmethod
    def from_yaml(text: str) -> ChaosScenario:
        """A scenario from a YAML (or JSON) document, validated."""
    @staticmethod
    def builtin(scenario_type: str) -> ChaosScenario:
        """The built-in scenario of a type."""
    @staticmethod
    def scenario_types() -> list[str]:
        """Every scenario type's name."""
    @property
    def id(self) -> str:
        """The scenario's id."""
    @property
    def name(self) -> str:
        """Its human name."""
    @property
    def description(self) -> str:
        """What it tests and what to expect."""
    @property
    def scenario_type(self) -> str:
        """Its type, e.g. ``packet-loss``."""
    @property
    def target_kind(self) -> str:
        """What it targets: pod, node or service."""
    def to_dict(self) -> dict[str, Any]:
        """The scenario as a dict."""
