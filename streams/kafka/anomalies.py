"""The anomalies topic `<prefix>.anomalies`: alert transitions as JSON (`schemas.anomaly`).

Key: the series (`kpi|window|dimensions`) or `data_stale|source`, so that one series' messages
stay in order on one partition.
"""

from __future__ import annotations

import logging

import orjson

from schemas import Anomaly
from streams.detection.watch import AnomalyEvent

log = logging.getLogger("streams.anomalies")
"""The alert log of whichever process decides them: a worker, or the merge stage."""


def anomaly_key(event: AnomalyEvent) -> bytes:
    if event.alert == "data_stale":
        return f"data_stale|{event.source}".encode()
    dims = ";".join(f"{k}={v}" for k, v in sorted(event.dimensions))
    return f"{event.kpi}|{event.window}|{dims}".encode()


def anomaly_message(event: AnomalyEvent, now: float) -> Anomaly:
    explanation = event.explanation
    return Anomaly.model_validate(
        {
            "alert": event.alert,
            "state": event.state,
            "severity": event.severity,
            "kpi": event.kpi,
            "window": event.window,
            "dimensions": dict(event.dimensions),
            "source": event.source,
            "window_start": event.window_start,
            "window_end": event.window_end,
            "observed": event.observed,
            "expected": event.expected,
            "lower": event.lower,
            "upper": event.upper,
            "score": round(event.score, 4),
            "started_at": event.started_at,
            "at": event.at,
            "emitted_at": round(now, 3),
            "incident": event.incident,
            "role": event.role,
            "explanation": None
            if explanation is None
            else {
                "text": explanation.text,
                "dimensions": [
                    {"dimension": d.dimension, "value": d.value, "share": d.share}
                    for d in explanation.dimensions
                ],
                "inputs": [
                    {
                        "kpi": m.kpi,
                        "observed": m.observed,
                        "expected": m.expected,
                        "change": m.change,
                        "z": m.z,
                    }
                    for m in explanation.inputs
                ],
            },
        }
    )


def anomaly_record(event: AnomalyEvent, now: float) -> tuple[bytes, bytes]:
    return anomaly_key(event), orjson.dumps(anomaly_message(event, now).model_dump(mode="json"))


def log_anomaly(event: AnomalyEvent) -> None:
    """One log line per alert opened or resolved (WARNING for stale sources)."""
    if event.alert == "data_stale":
        log.warning("data_stale %s: source %s", event.state, event.source)
        return
    dims = ",".join(f"{k}={v}" for k, v in event.dimensions)
    text = event.explanation.text if event.explanation else ""
    log.info(
        "anomaly %s (%s, %s of %s): %s{%s} window %s score %.2f %s",
        event.state,
        event.severity,
        event.role,
        event.incident,
        event.kpi,
        dims,
        event.window,
        event.score,
        text,
    )
