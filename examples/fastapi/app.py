"""A FastAPI incident service on Octrix's core (seeds 001 and 004).

* ``POST /alerts``: Alertmanager's webhook (payload version 4) into an
  :class:`octrix.IncidentBook` (deduplicated by fingerprint, auto-resolved).
* ``GET /incidents``: incidents, filtered by status, severity, service,
  environment and text, paged.
* ``GET /incidents/{id}``, ``POST /incidents/{id}/acknowledge`` and
  ``/resolve``: one incident and its lifecycle.
* ``GET /stats``: counts, MTTA and MTTR.
* ``POST /detect``: a batch of samples in, anomalies out (windowed z-score,
  window 20 and 2.5 standard deviations by default).

Run it with ``uvicorn app:app`` from this folder; ``create_app(clock=...)``
builds an app with a fixed clock for tests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import octrix

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


class Actor(BaseModel):
    """Who changes an incident, and why."""

    actor: str = Field(min_length=1)
    note: str | None = None


class DetectRequest(BaseModel):
    """A series of samples and the detector settings to judge it with."""

    samples: list[float] = Field(min_length=1, max_length=1_000_000)
    window: int = Field(default=20, ge=2)
    sensitivity: float = Field(default=2.5, gt=0)


class Anomaly(BaseModel):
    """One anomalous sample."""

    index: int
    value: float
    z: float
    score: float
    direction: str
    confidence: float


class DetectResponse(BaseModel):
    """What the detector found in a batch."""

    samples: int
    judged: int
    anomalies: list[Anomaly]


def create_app(clock: Clock = system_clock) -> FastAPI:
    """The app, with its own incident book, reading time from ``clock``."""
    app = FastAPI(title="Octrix incidents", version="0.1.0")
    book = octrix.IncidentBook()

    @app.exception_handler(octrix.ValidationError)
    async def invalid(_: Any, error: octrix.ValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": str(error), "field": error.field},
        )

    @app.exception_handler(octrix.UnknownIncidentError)
    async def unknown(_: Any, error: octrix.UnknownIncidentError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": f"no incident {error.incident_id}"})

    @app.exception_handler(octrix.IllegalTransitionError)
    async def conflict(_: Any, error: octrix.IllegalTransitionError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.post("/alerts")
    def receive_alerts(payload: dict[str, Any]) -> dict[str, Any]:
        """Alertmanager's webhook: every alert opens, updates or resolves an incident."""
        results = book.ingest_alertmanager(payload, now=clock())
        return {
            "received": len(results),
            "results": [
                {
                    "fingerprint": r.fingerprint,
                    "outcome": r.outcome,
                    "incident_id": r.incident_id,
                    "reason": r.reason,
                }
                for r in results
            ],
        }

    @app.get("/incidents")
    def list_incidents(
        status: Annotated[list[octrix.IncidentStatus] | None, Query()] = None,
        severity: Annotated[list[octrix.Severity] | None, Query()] = None,
        service: str | None = None,
        environment: str | None = None,
        q: str | None = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        """Incidents matching every filter, most recently active first."""
        page = book.query(
            status=status,
            severity=severity,
            service=service,
            environment=environment,
            text=q,
            offset=offset,
            limit=limit,
        )
        return {
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "items": [incident.to_dict() for incident in page.items],
        }

    @app.get("/incidents/{incident_id}")
    def get_incident(incident_id: str) -> dict[str, Any]:
        """One incident with its timeline."""
        return book[incident_id].to_dict()

    @app.post("/incidents/{incident_id}/acknowledge")
    def acknowledge(incident_id: str, body: Actor) -> dict[str, Any]:
        """Someone is on it."""
        return book.acknowledge(incident_id, body.actor, body.note, now=clock()).to_dict()

    @app.post("/incidents/{incident_id}/resolve")
    def resolve(incident_id: str, body: Actor) -> dict[str, Any]:
        """It is over."""
        return book.resolve(incident_id, body.actor, body.note, now=clock()).to_dict()

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        """Counts, MTTA and MTTR (in seconds) of every incident."""
        raw = book.stats()
        for key in ("mtta", "mttr"):
            summary = raw[key]
            raw[key] = {
                "count": summary["count"],
                "mean_seconds": summary["mean"].total_seconds() if summary["mean"] else None,
                "median_seconds": summary["median"].total_seconds() if summary["median"] else None,
            }
        return raw

    @app.post("/detect")
    def detect(request: DetectRequest) -> DetectResponse:
        """The anomalies of a batch of samples, judged in order."""
        try:
            detector = octrix.WindowedZScore(window=request.window, sensitivity=request.sensitivity)
        except octrix.ConfigError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
        batch = detector.observe_many(request.samples)
        return DetectResponse(
            samples=len(batch),
            judged=batch.judged,
            anomalies=[
                Anomaly(
                    index=index,
                    value=request.samples[index],
                    z=detection.z,
                    score=detection.score,
                    direction=detection.direction,
                    confidence=detection.confidence,
                )
                for index, detection in batch.anomalies
            ],
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    return app


app = create_app()
