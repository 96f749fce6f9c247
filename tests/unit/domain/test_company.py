"""Company: created, renamed, suspended and reactivated."""

import pytest

from csms.domain import Company, CompanySuspended, InvalidValue
from tests.unit.domain.support import COMPANY_ID, at, given, history, new_events, topics


def created() -> list[object]:
    return history(Company.create(id=COMPANY_ID, name="  Volt Amsterdam ", at=at()))


def test_create_records_the_trimmed_name() -> None:
    company = Company.create(id=COMPANY_ID, name="  Volt Amsterdam ", at=at())

    [created_event] = new_events(company)
    assert topics([created_event]) == ["Company.Created"]
    assert created_event.originator_id == COMPANY_ID
    assert created_event.name == "Volt Amsterdam"
    assert created_event.timestamp == at()
    assert company.is_active


def test_create_refuses_a_blank_name() -> None:
    with pytest.raises(InvalidValue, match="name must not be blank"):
        Company.create(id=COMPANY_ID, name="   ", at=at())


def test_create_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidValue, match="timezone-aware"):
        Company.create(id=COMPANY_ID, name="Volt", at=at().replace(tzinfo=None))


def test_suspend_blocks_operation_until_reactivated() -> None:
    company = given(Company, *created())

    company.suspend("unpaid invoices", at(1))

    [suspended] = new_events(company)
    assert topics([suspended]) == ["Company.Suspended"]
    assert suspended.reason == "unpaid invoices"
    with pytest.raises(CompanySuspended, match="unpaid invoices"):
        company.ensure_active()

    company.reactivate(at(2))

    assert topics(new_events(company)) == ["Company.Reactivated"]
    company.ensure_active()


def test_suspending_twice_records_once() -> None:
    company = given(Company, *created())
    company.suspend("fraud check", at(1))
    past = created() + new_events(company)
    company = given(Company, *past)

    company.suspend("fraud check again", at(2))

    assert new_events(company) == []


def test_reactivating_an_active_company_changes_nothing() -> None:
    company = given(Company, *created())

    company.reactivate(at(1))

    assert new_events(company) == []


def test_rename_only_records_a_change() -> None:
    company = given(Company, *created())

    company.rename("Volt Amsterdam", at(1))
    assert new_events(company) == []

    company.rename("Volt NL", at(2))
    [renamed] = new_events(company)
    assert topics([renamed]) == ["Company.Renamed"]
    assert renamed.name == "Volt NL"


def test_rebuilding_from_events_reproduces_the_state() -> None:
    company = Company.create(id=COMPANY_ID, name="Volt", at=at())
    company.suspend("audit", at(1))
    company.rename("Volt NL", at(2))
    events = history(company)

    assert given(Company, *events) == company
