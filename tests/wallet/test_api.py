"""The rider's wallet API: balance and holds, entries, withdrawals with Idempotency-Key, and the CSV statement."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.riders.factories import RiderFactory, UserFactory
from tests.wallet.factories import FinanceUserFactory, deliver, earn, picked_up
from wallet import services
from wallet.models import Account, EntryType, LedgerEntry, WithdrawalRequest

pytestmark = pytest.mark.django_db

WALLET = "/api/v1/driver/wallet/"
ENTRIES = "/api/v1/driver/wallet/entries/"
STATEMENT = "/api/v1/driver/wallet/statement/"
WITHDRAWALS = "/api/v1/driver/withdrawals/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def rider():
    return RiderFactory()


@pytest.fixture
def api(rider):
    return client_for(rider.user)


def test_the_wallet_shows_balance_holds_cod_limits_and_newest_entries(api, rider, settings):
    settings.WALLET_WITHDRAWAL_MIN_PAISE = 100_00
    earn(rider.pk, 2_000_00)
    deliver(picked_up(rider, delivery_fee_paise=45_50, cod_amount_paise=300_00))
    services.withdrawal_request(rider_id=rider.pk, amount_paise=500_00, idempotency_key="k")

    body = api.get(WALLET).json()
    assert body["balance"] == "1545.50"
    assert body["pending_withdrawals"] == {"count": 1, "amount": "500.00"}
    assert (body["cod_balance"], body["cod_held"]) == ("-300.00", "300.00")
    assert body["withdrawal_limits"]["minimum"] == "100.00"
    assert [e["type"] for e in body["entries"]] == ["WITHDRAWAL", "COD_COLLECTED", "EARNING", "INCENTIVE"]
    assert body["entries"][0]["amount"] == "-500.00"


def test_the_wallet_is_cached_until_a_posting_commits(api, rider, django_capture_on_commit_callbacks):
    first = api.get(WALLET)
    second = api.get(WALLET)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    with django_capture_on_commit_callbacks(execute=True):
        earn(rider.pk, 1_00)
    third = api.get(WALLET)
    assert (third["X-Cache"], third.json()["balance"]) == ("MISS", "1.00")


def test_a_rider_with_no_wallet_yet_sees_zeros(api):
    body = api.get(WALLET).json()
    assert (body["balance"], body["cod_held"], body["entries"]) == ("0.00", "0.00", [])


def test_a_cached_wallet_read_costs_no_query_beyond_authentication(api):
    api.get(WALLET)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(WALLET)["X-Cache"] == "HIT"
    assert len(queries) == 1  # the token, with its user and rider


def test_entries_page_newest_first_with_cursors_in_constant_queries(api, rider):
    for _ in range(5):
        earn(rider.pk, 1_00)
    earn(RiderFactory().pk, 7_00)  # another rider's
    first = api.get(ENTRIES, {"page_size": 3}).json()
    assert len(first["results"]) == 3
    second = api.get(first["next"]).json()
    ids = [e["id"] for e in first["results"] + second["results"]]
    assert ids == sorted(LedgerEntry.objects.filter(rider=rider).values_list("id", flat=True), reverse=True)
    with CaptureQueriesContext(connection) as few:
        api.get(ENTRIES)
    for _ in range(20):
        earn(rider.pk, 1_00)
    with CaptureQueriesContext(connection) as many:
        api.get(ENTRIES)
    assert len(many) == len(few)


def test_a_withdrawal_request_is_201_and_holds_the_amount(api, rider):
    earn(rider.pk, 1_000_00)
    response = api.post(WITHDRAWALS, {"amount": "500.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["status"]) == ("500.00", "REQUESTED")
    assert api.get(WALLET).json()["balance"] == "500.00"


def test_a_retried_withdrawal_with_the_same_key_requests_once(api, rider):
    earn(rider.pk, 1_000_00)
    first = api.post(WITHDRAWALS, {"amount": "300.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    replay = api.post(WITHDRAWALS, {"amount": "300.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert WithdrawalRequest.objects.filter(rider=rider).count() == 1


def test_the_key_is_kept_with_the_request_beyond_the_replay_store(api, rider):
    """Redis's replay store lost the response (expired, flushed): the key kept with the request still decides."""
    from django.core.cache import cache

    earn(rider.pk, 1_000_00)
    first = api.post(WITHDRAWALS, {"amount": "300.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    cache.delete_pattern("idem:*")
    again = api.post(WITHDRAWALS, {"amount": "300.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    cache.delete_pattern("idem:*")
    other = api.post(WITHDRAWALS, {"amount": "301.00"}, format="json", HTTP_IDEMPOTENCY_KEY="tap-1")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert WithdrawalRequest.objects.filter(rider=rider).count() == 1


def test_requests_without_a_key_are_each_their_own(api, rider):
    earn(rider.pk, 1_000_00)
    api.post(WITHDRAWALS, {"amount": "100.00"}, format="json")
    api.post(WITHDRAWALS, {"amount": "100.00"}, format="json")
    assert WithdrawalRequest.objects.filter(rider=rider).count() == 2


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        ("5000.00", 422, "insufficient_balance"),
        ("1.00", 422, "amount_below_minimum"),
        ("50000.01", 422, "amount_above_maximum"),
        ("0.00", 400, "invalid_input"),
        ("-5.00", 400, "invalid_input"),
        ("10.001", 400, "invalid_input"),
        (500, 400, "invalid_input"),
        ("1e3", 400, "invalid_input"),
    ],
)
def test_refused_withdrawals_answer_in_the_error_shape(api, rider, amount, status, code, settings):
    settings.WALLET_WITHDRAWAL_MIN_PAISE = 100_00
    settings.WALLET_WITHDRAWAL_MAX_PAISE = 50_000_00
    earn(rider.pk, 1_000_00)
    response = api.post(WITHDRAWALS, {"amount": amount}, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not WithdrawalRequest.objects.filter(rider=rider).exists()


def test_the_daily_cap_is_a_422(api, rider, settings):
    settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE = 500_00
    earn(rider.pk, 1_000_00)
    assert api.post(WITHDRAWALS, {"amount": "400.00"}, format="json").status_code == 201
    response = api.post(WITHDRAWALS, {"amount": "100.01"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "daily_cap_exceeded")


def test_the_withdrawal_list_shows_status_reference_and_reason(api, rider):
    earn(rider.pk, 1_000_00)
    finance = FinanceUserFactory()
    paid = services.withdrawal_request(rider_id=rider.pk, amount_paise=100_00, idempotency_key="a").withdrawal
    rejected = services.withdrawal_request(rider_id=rider.pk, amount_paise=200_00, idempotency_key="b").withdrawal
    services.withdrawals_approve(withdrawal_ids=[paid.pk], actor=finance, payout_reference="UTR9")
    services.withdrawals_reject(withdrawal_ids=[rejected.pk], actor=finance, reason="Wrong account")
    other = RiderFactory()
    earn(other.pk, 1_000_00)
    services.withdrawal_request(rider_id=other.pk, amount_paise=100_00, idempotency_key="a")

    results = api.get(WITHDRAWALS).json()["results"]
    assert [(w["id"], w["status"]) for w in results] == [(rejected.pk, "REJECTED"), (paid.pk, "PAID")]
    assert results[0]["rejection_reason"] == "Wrong account"
    assert results[1]["payout_reference"] == "UTR9"


@pytest.mark.parametrize("path", [WALLET, ENTRIES, WITHDRAWALS, STATEMENT])
def test_staff_without_a_rider_are_refused(path):
    assert client_for(UserFactory(is_staff=True)).get(path).status_code == 403
    assert APIClient().get(path).status_code == 401


# --- Statement -------------------------------------------------------------------------------------------


def rows_of(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_statement_is_csv_with_opening_and_running_balances(api, rider):
    earn(rider.pk, 1_000_00)
    deliver(picked_up(rider, delivery_fee_paise=45_00, cod_amount_paise=250_00))
    services.withdrawal_request(rider_id=rider.pk, amount_paise=500_00, idempotency_key="k")
    today = timezone.localdate()

    response = api.get(STATEMENT, {"from": str(today), "to": str(today)})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = rows_of(response)
    assert [r["type"] for r in rows] == ["OPENING", "INCENTIVE", "EARNING", "COD_COLLECTED", "WITHDRAWAL"]
    assert rows[0]["wallet_balance"] == "0.00"
    assert [(r["credit"], r["debit"], r["wallet_balance"], r["cod_balance"]) for r in rows[1:]] == [
        ("1000.00", "", "1000.00", "0.00"),
        ("45.00", "", "1045.00", "0.00"),
        ("", "250.00", "1045.00", "-250.00"),
        ("", "500.00", "545.00", "-250.00"),
    ]


def test_the_statement_range_opens_with_what_came_before(api, rider):
    earn(rider.pk, 1_000_00)
    yesterday = timezone.localdate() - timedelta(days=1)
    # Entries are append-only; what came before a range is what was posted before its first day.
    response = api.get(STATEMENT, {"from": str(yesterday), "to": str(yesterday)})
    rows = rows_of(response)
    assert [r["type"] for r in rows] == ["OPENING"]
    tomorrow = timezone.localdate() + timedelta(days=1)
    rows = rows_of(api.get(STATEMENT, {"from": str(tomorrow), "to": str(tomorrow)}))
    assert (rows[0]["type"], rows[0]["wallet_balance"]) == ("OPENING", "1000.00")


def test_the_statement_defuses_spreadsheet_formulas(api, rider):
    ops = UserFactory(is_staff=True)
    services.ledger_entry_post(
        rider_id=rider.pk,
        entry_type=EntryType.COD_COLLECTED,
        account=Account.COD,
        amount_paise=-1_00,
        idempotency_key="c",
    )
    services.cod_deposit_record(
        rider_id=rider.pk, amount_paise=1_00, receipt="R1", actor=ops, memo='=HYPERLINK("http://evil")'
    )
    rows = rows_of(api.get(STATEMENT))
    assert rows[-1]["description"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["debit"] == "1.00"  # numbers stay numbers


def test_the_statement_is_the_riders_own(api, rider):
    earn(RiderFactory().pk, 9_00)
    assert [r["type"] for r in rows_of(api.get(STATEMENT))] == ["OPENING"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-30"},
        {"from": "2026-03-10", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2022-01-01"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"to": "9999-12-31"},
    ],
)
def test_a_bad_statement_range_is_a_400_in_json(api, params):
    response = api.get(STATEMENT, params, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "invalid_input"


def test_the_statement_accepts_csv_and_refuses_html(api):
    assert api.get(STATEMENT, HTTP_ACCEPT="text/csv").status_code == 200
    assert api.get(STATEMENT, HTTP_ACCEPT="text/html").status_code == 406


def test_the_statement_streams_in_constant_queries(api, rider):
    earn(rider.pk, 1_00)
    with CaptureQueriesContext(connection) as few:
        rows_of(api.get(STATEMENT))
    for _ in range(30):
        earn(rider.pk, 1_00)
    with CaptureQueriesContext(connection) as many:
        assert len(rows_of(api.get(STATEMENT))) == 32
    assert len(many) == len(few)
