"""Anomaly detection, pure: detectors that learn each KPI series and score it (`detectors`), the
alert lifecycle on top (`alerts`), whether sources are complete enough to judge (`completeness`),
what moved and why (`explain`), and the watch that runs them over closed windows (`watch`).

Imports the core (KPI values, the catalog); no Kafka, Faust or Prometheus.
"""
