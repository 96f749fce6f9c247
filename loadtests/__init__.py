"""Load tests, the charger-fleet simulator and benchmarks, each with a baseline measured in the same run."""
