"""What Prometheus reads: collectors over the state a worker owns (`metrics`) and the HTTP server
for /metrics, /healthz and /readyz (`http`)."""
