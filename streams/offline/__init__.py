"""The core over files, without a broker: `pulse backtest` (KPIs of an event file) and
`pulse detect` (the detector over a CSV series)."""
