"""cartesim harness: CLI, pytest plugin, pcscd/vpcd lifecycle, scenarios, benchmarks."""
