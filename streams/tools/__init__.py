"""Development tools, not the production path: the simulator and its labelled incidents, the
paced publisher, the demo, benchmarks (`bench`, `bench_replay`, `faust_baseline`) and the
detector evaluation behind `pulse evaluate` (`evaluate`)."""
