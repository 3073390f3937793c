"""The analytics read model: unmanaged models over the materialized views of ``analytics/sql/0001_views.sql``.

Django never writes these: migrations own the SQL, ``analytics.services.view_refresh`` refreshes them, and
``analytics.selectors`` reads them (through the cache). Foreign keys carry no database constraint: a view
row is a snapshot, and may name a rider or city that has since changed.
"""

from __future__ import annotations

from django.db import models


class MaterializedView(models.TextChoices):
    """The views, by name; their table is ``analytics_<name>``. Every identifier that reaches SQL comes from here."""

    DASHBOARD_STATS = "dashboard_stats", "Dashboard stats"
    RIDER_LEADERBOARD = "rider_leaderboard", "Rider leaderboard"
    RIDER_PERFORMANCE_SUMMARY = "rider_performance_summary", "Rider performance summary"

    @property
    def table(self) -> str:
        return f"analytics_{self.value}"

    @property
    def refresh_period_s(self) -> int:
        """How often beat refreshes the view (config/schedule.py); cached reads of it live as long."""
        return _REFRESH_PERIOD_S[self]

    @property
    def lock_key(self) -> int:
        """Second half of the view's advisory lock key (the first is ``analytics.services.LOCK_NAMESPACE``)."""
        return list(MaterializedView).index(self) + 1


_REFRESH_PERIOD_S = {
    MaterializedView.DASHBOARD_STATS: 60,
    MaterializedView.RIDER_LEADERBOARD: 60 * 60,
    MaterializedView.RIDER_PERFORMANCE_SUMMARY: 6 * 60 * 60,
}


class DashboardStats(models.Model):
    """One row per city: its riders now, today's orders and deliveries, distance today and COD held."""

    city = models.OneToOneField(
        "fleet.City", primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    city_code = models.CharField(max_length=16, unique=True)
    day = models.DateField(help_text="The portal's local day (TIME_ZONE) the figures of today are for.")
    active_riders = models.IntegerField(help_text="Riders whose account is active and KYC approved.")
    on_duty_riders = models.IntegerField()
    orders_today = models.IntegerField(help_text="Orders created today, by their status now in the next seven.")
    orders_created = models.IntegerField()
    orders_assigned = models.IntegerField()
    orders_accepted = models.IntegerField()
    orders_picked_up = models.IntegerField()
    orders_delivered = models.IntegerField()
    orders_cancelled = models.IntegerField()
    orders_failed = models.IntegerField()
    delivered_today = models.IntegerField(help_text="Orders delivered today, whenever they were created.")
    average_delivery_s = models.FloatField(null=True, help_text="Creation to delivery, over today's deliveries.")
    distance_today_m = models.BigIntegerField()
    cod_outstanding_paise = models.BigIntegerField(help_text="Cash on delivery riders hold and have not handed in.")
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "analytics_dashboard_stats"
        verbose_name_plural = "dashboard stats"

    def __str__(self) -> str:
        return f"{self.city_code} on {self.day}"


class RiderLeaderboard(models.Model):
    """One row per rider who earned or delivered in the last 7 days, ranked within the rider's city."""

    rider = models.OneToOneField(
        "riders.Rider", primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    city = models.ForeignKey("fleet.City", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    rider_name = models.CharField(max_length=120)
    earnings_paise = models.BigIntegerField()
    completed_orders = models.IntegerField()
    average_rating = models.FloatField(null=True)
    ratings = models.IntegerField()
    rank = models.IntegerField(help_text="1 is the top earner of the city; ties share a rank.")
    period_starts_at = models.DateTimeField()
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "analytics_rider_leaderboard"

    def __str__(self) -> str:
        return f"#{self.rank} rider {self.rider_id}"


class RiderPerformanceSummary(models.Model):
    """One row per rider: orders by outcome, acceptance and on-time rates, rating, hours on duty."""

    rider = models.OneToOneField(
        "riders.Rider", primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    city = models.ForeignKey("fleet.City", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    total_orders = models.IntegerField()
    completed_orders = models.IntegerField()
    cancelled_orders = models.IntegerField()
    failed_orders = models.IntegerField()
    acceptance_rate = models.FloatField(null=True, help_text="Accepted / (accepted + rejected + expired) offers.")
    on_time_rate = models.FloatField(null=True, help_text="Delivered within ANALYTICS_ON_TIME_MINUTES / delivered.")
    average_rating = models.FloatField(null=True)
    ratings = models.IntegerField()
    on_duty_s_7d = models.BigIntegerField()
    on_duty_s_30d = models.BigIntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "analytics_rider_performance_summary"
        verbose_name_plural = "rider performance summaries"

    def __str__(self) -> str:
        return f"performance of rider {self.rider_id}"
