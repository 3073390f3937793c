"""Wallet: the append-only ledger, per-rider balances and withdrawal requests.

Money is integer paise everywhere. Two accounts per rider: WALLET (what the fleet owes the rider:
earnings, incentives, minus withdrawals) and COD (cash on delivery the rider collected and has not
yet handed in; negative means the rider holds the fleet's cash).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Account(models.TextChoices):
    WALLET = "WALLET", "Wallet"
    COD = "COD", "Cash on delivery"


class EntryType(models.TextChoices):
    EARNING = "EARNING", "Delivery earning"
    INCENTIVE = "INCENTIVE", "Incentive"
    COD_COLLECTED = "COD_COLLECTED", "COD collected from customer"
    COD_DEPOSIT = "COD_DEPOSIT", "COD handed in"
    WITHDRAWAL = "WITHDRAWAL", "Withdrawal hold"
    ADJUSTMENT = "ADJUSTMENT", "Adjustment"
    REVERSAL = "REVERSAL", "Reversal"


CREDIT_TYPES = (EntryType.EARNING, EntryType.INCENTIVE, EntryType.COD_DEPOSIT)
DEBIT_TYPES = (EntryType.COD_COLLECTED, EntryType.WITHDRAWAL)
COD_TYPES = (EntryType.COD_COLLECTED, EntryType.COD_DEPOSIT)


class LedgerEntry(models.Model):
    """One posting. Never updated, never deleted: the database refuses both (``wallet/sql/0001_ledger.sql``).

    The table is hash-partitioned by ``rider_id`` and its real primary key is ``(rider_id, id)``;
    Django is told ``id`` is the key so that admin works (the state and the database are split in
    the migration). ``idempotency_key`` is unique across all partitions through a guard table.
    """

    id = models.BigAutoField(primary_key=True)
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, db_index=False, related_name="ledger_entries")
    account = models.CharField(max_length=8, choices=Account.choices, default=Account.WALLET)
    entry_type = models.CharField(max_length=16, choices=EntryType.choices)
    amount_paise = models.BigIntegerField(help_text="Positive credits the rider, negative debits.")
    idempotency_key = models.CharField(max_length=128)
    order = models.ForeignKey(
        "orders.Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="ledger_entries",
    )
    # The composite foreign key (rider_id, reverses_id) -> (rider_id, id) lives in the SQL.
    reverses = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    memo = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_index=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "wallet_ledgerentry"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=Q(entry_type__in=EntryType.values), name="ledger_entry_type_valid"),
            models.CheckConstraint(condition=Q(account__in=Account.values), name="ledger_account_valid"),
            models.CheckConstraint(condition=~Q(amount_paise=0), name="ledger_amount_non_zero"),
            models.CheckConstraint(
                condition=~Q(entry_type__in=CREDIT_TYPES) | Q(amount_paise__gt=0), name="ledger_credit_positive"
            ),
            models.CheckConstraint(
                condition=~Q(entry_type__in=DEBIT_TYPES) | Q(amount_paise__lt=0), name="ledger_debit_negative"
            ),
            models.CheckConstraint(
                condition=~Q(entry_type__in=COD_TYPES) | Q(account=Account.COD), name="ledger_cod_types_on_cod"
            ),
            models.CheckConstraint(
                condition=Q(entry_type=EntryType.REVERSAL, reverses__isnull=False)
                | (~Q(entry_type=EntryType.REVERSAL) & Q(reverses__isnull=True)),
                name="ledger_reversal_points_at_entry",
            ),
            # Unique per rider in the table itself (a partitioned table's unique keys must hold the
            # partition key); unique across riders through LedgerKey, filled by a trigger.
            models.UniqueConstraint(fields=["rider", "idempotency_key"], name="ledger_idempotency_per_rider"),
            # An entry is reversed at most once.
            models.UniqueConstraint(
                fields=["rider", "reverses"], condition=Q(reverses__isnull=False), name="ledger_reversed_once"
            ),
        ]
        indexes = [
            models.Index(fields=["rider", "-created_at"], name="ledger_rider_created_idx"),
            models.Index(fields=["order"], name="ledger_order_idx", condition=Q(order__isnull=False)),
            # The primary key leads with rider_id; admin and reversals find an entry by id alone.
            models.Index(fields=["id"], name="ledger_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_type} {self.amount_paise:+d} paise for rider {self.rider_id}"


class LedgerKey(models.Model):
    """Every idempotency key ever posted, across all ledger partitions.

    Written only by the ledger's insert trigger, never by Django; its primary key is what makes
    a key unique fleet-wide. Append-only like the ledger.
    """

    idempotency_key = models.CharField(max_length=128, primary_key=True)
    rider_id = models.BigIntegerField()
    entry_id = models.BigIntegerField()

    class Meta:
        db_table = "wallet_ledgerkey"

    def __str__(self) -> str:
        return self.idempotency_key


class Balance(models.Model):
    """A rider's balances, kept equal to the sum of the rider's entries in the same transaction.

    Debits lock this row (``SELECT ... FOR UPDATE``) so concurrent withdrawals serialise and the
    wallet balance can never go below zero; the check constraint is the last line of defence.
    """

    rider = models.OneToOneField("riders.Rider", on_delete=models.PROTECT, primary_key=True, related_name="balance")
    wallet_paise = models.BigIntegerField(default=0)
    cod_paise = models.BigIntegerField(default=0)
    entry_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(wallet_paise__gte=0), name="balance_wallet_non_negative"),
        ]
        permissions = [("record_cod_deposit", "Can record COD cash handed in by a rider")]

    def __str__(self) -> str:
        return f"balance of rider {self.rider_id}"


class WithdrawalStatus(models.TextChoices):
    REQUESTED = "REQUESTED", "Requested"
    APPROVED = "APPROVED", "Approved, awaiting second approval"
    PAID = "PAID", "Paid"
    REJECTED = "REJECTED", "Rejected"


class WithdrawalRequest(models.Model):
    """A rider asks to be paid out; the hold is posted at once, ops pay or reject it."""

    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, related_name="withdrawals")
    amount_paise = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.REQUESTED)
    idempotency_key = models.CharField(max_length=128)
    hold_entry_id = models.BigIntegerField(null=True, blank=True, help_text="The WITHDRAWAL ledger entry.")
    release_entry_id = models.BigIntegerField(
        null=True, blank=True, help_text="The REVERSAL entry posted when the request was rejected."
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    second_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    payout_reference = models.CharField(max_length=64, blank=True)
    rejection_reason = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_paise__gt=0), name="withdrawal_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=WithdrawalStatus.values), name="withdrawal_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=WithdrawalStatus.PAID) | ~Q(payout_reference=""),
                name="withdrawal_paid_has_reference",
            ),
            models.CheckConstraint(
                condition=~Q(status=WithdrawalStatus.REJECTED) | ~Q(rejection_reason=""),
                name="withdrawal_rejected_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(second_approved_by__isnull=True) | ~Q(second_approved_by=F("approved_by")),
                name="withdrawal_two_different_approvers",
            ),
            models.UniqueConstraint(fields=["rider", "idempotency_key"], name="withdrawal_idempotency_per_rider"),
        ]
        indexes = [
            models.Index(
                fields=["requested_at"],
                name="withdrawal_pending_idx",
                condition=Q(status__in=["REQUESTED", "APPROVED"]),
            ),
            models.Index(fields=["rider", "-requested_at"], name="withdrawal_rider_requested_idx"),
            models.Index(fields=["decided_at"], name="withdrawal_paid_idx", condition=Q(status="PAID")),
        ]

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} of {self.amount_paise} paise by rider {self.rider_id}"


class ReconciliationRun(models.Model):
    """One pass of the nightly reconciliation: every rider's balance row against the sum of their entries."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    riders_checked = models.PositiveIntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    drift_count = models.PositiveIntegerField(
        default=0, help_text="Riders whose balance row disagreed with the ledger."
    )
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconciliation of {self.started_at:%Y-%m-%d %H:%M}: {self.drift_count} drifting"


class ReconciliationDrift(models.Model):
    """A rider whose balance row did not equal the sum of their entries when a run looked.

    Recorded, logged and shown in admin; never corrected by the system (a correction is a person's
    decision, posted as a reversal or an adjustment). ``balance_*`` is null when the rider has entries
    but no balance row.
    """

    run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="drifts")
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, related_name="+")
    balance_wallet_paise = models.BigIntegerField(null=True, blank=True)
    ledger_wallet_paise = models.BigIntegerField()
    balance_cod_paise = models.BigIntegerField(null=True, blank=True)
    ledger_cod_paise = models.BigIntegerField()
    balance_entry_count = models.BigIntegerField(null=True, blank=True)
    ledger_entry_count = models.BigIntegerField()

    class Meta:
        ordering = ["-run_id", "rider_id"]
        constraints = [models.UniqueConstraint(fields=["run", "rider"], name="reconciliation_drift_once_per_run")]
        indexes = [models.Index(fields=["rider", "-run"], name="reconciliation_drift_rider_idx")]

    def __str__(self) -> str:
        return f"drift of rider {self.rider_id} in run {self.run_id}"

    @property
    def wallet_drift_paise(self) -> int | None:
        """Balance minus ledger for the wallet account (None without a balance row)."""
        if self.balance_wallet_paise is None:
            return None
        return self.balance_wallet_paise - self.ledger_wallet_paise

    @property
    def cod_drift_paise(self) -> int | None:
        if self.balance_cod_paise is None:
            return None
        return self.balance_cod_paise - self.ledger_cod_paise
