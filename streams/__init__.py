"""kpi-pulse: live finance & operations KPIs from Kafka, for Prometheus and Grafana."""

__version__ = "0.1.0"
