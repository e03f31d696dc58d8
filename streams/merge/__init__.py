"""The merge stage: per-partition partials in, company-wide KPI values out (faust-streaming)."""
