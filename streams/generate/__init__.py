"""Files generated from the catalog and committed: Prometheus rules (`rules`), the Alertmanager
configuration (`alertmanager`), Grafana boards (`dashboards`, `panels`, `queries`), and the list
of every generated file with its drift check (`files`, behind `pulse generate`)."""
