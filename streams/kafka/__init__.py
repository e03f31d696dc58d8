"""Kafka plumbing: clients and topics (`clients`), the processing guarantee (`guarantee`), the
changelog written and replayed (`changelog`), the dead-letter records (`deadletter`), the KPI and
anomaly output records (`kpi_topic`, `anomalies`) and the embedded broker (`embedded`)."""
