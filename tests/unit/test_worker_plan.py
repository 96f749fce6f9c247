"""`csms serve --workers N`: which processes the supervisor runs for which roles."""

from __future__ import annotations

import pytest

from csms.cli.roles import ROLES
from csms.cli.serve import _role_names
from csms.cli.workers import WorkerSpec, plan_workers


def test_scalable_roles_get_n_processes_and_the_single_active_ones_one() -> None:
    plan = plan_workers(["gateway", "projector", "write-api", "billing", "read-api"], 3)
    counts = {role: sum(1 for spec in plan if spec.role == role) for role in ROLES}
    assert counts == {"gateway": 3, "write-api": 3, "read-api": 3, "projector": 1, "billing": 1}
    assert plan[:4] == [WorkerSpec("gateway", 0), WorkerSpec("gateway", 1), WorkerSpec("gateway", 2),
                        WorkerSpec("projector", 0)]  # fmt: skip
    assert len({spec.name for spec in plan}) == len(plan)


def test_all_means_every_role_and_billing_only_with_stripe() -> None:
    assert _role_names(("all",), stripe_configured=True) == list(ROLES)
    assert "billing" not in _role_names(("all",), stripe_configured=False)
    assert _role_names(("gateway", "gateway", "read-api"), stripe_configured=False) == ["gateway", "read-api"]


def test_no_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_workers(["gateway"], 0)
