"""What every process shows operators: structured logs, health and readiness endpoints."""
