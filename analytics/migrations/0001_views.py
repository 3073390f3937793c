"""The three materialized views of the analytics read model (SQL: analytics/sql/0001_views.sql), created WITH
NO DATA and then filled once here; Django's state gets unmanaged models over them."""

import django.db.models.deletion
from django.db import migrations, models

from config.migration_sql import run_sql_file


def populate(apps, schema_editor):
    from analytics.services import views_populate

    views_populate(schema_editor)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('fleet', '0004_riderdaydistance'),
        ('orders', '0003_offers_proof_and_intake'),
        ('riders', '0001_initial'),
        ('wallet', '0001_initial'),
    ]

    operations = [
        run_sql_file('analytics', '0001_views'),
        migrations.RunPython(populate, migrations.RunPython.noop),
        migrations.CreateModel(
            name='DashboardStats',
            fields=[
                ('city', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='fleet.city')),
                ('city_code', models.CharField(max_length=16, unique=True)),
                ('day', models.DateField(help_text="The portal's local day (TIME_ZONE) the figures of today are for.")),
                ('active_riders', models.IntegerField(help_text='Riders whose account is active and KYC approved.')),
                ('on_duty_riders', models.IntegerField()),
                ('orders_today', models.IntegerField(help_text='Orders created today, by their status now in the next seven.')),
                ('orders_created', models.IntegerField()),
                ('orders_assigned', models.IntegerField()),
                ('orders_accepted', models.IntegerField()),
                ('orders_picked_up', models.IntegerField()),
                ('orders_delivered', models.IntegerField()),
                ('orders_cancelled', models.IntegerField()),
                ('orders_failed', models.IntegerField()),
                ('delivered_today', models.IntegerField(help_text='Orders delivered today, whenever they were created.')),
                ('average_delivery_s', models.FloatField(help_text='Creation to delivery, over today\'s deliveries.', null=True)),
                ('distance_today_m', models.BigIntegerField()),
                ('cod_outstanding_paise', models.BigIntegerField(help_text='Cash on delivery riders hold and have not handed in.')),
                ('refreshed_at', models.DateTimeField()),
            ],
            options={
                'verbose_name_plural': 'dashboard stats',
                'db_table': 'analytics_dashboard_stats',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='RiderLeaderboard',
            fields=[
                ('rider', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='riders.rider')),
                ('rider_name', models.CharField(max_length=120)),
                ('earnings_paise', models.BigIntegerField()),
                ('completed_orders', models.IntegerField()),
                ('average_rating', models.FloatField(null=True)),
                ('ratings', models.IntegerField()),
                ('rank', models.IntegerField(help_text='1 is the top earner of the city; ties share a rank.')),
                ('period_starts_at', models.DateTimeField()),
                ('refreshed_at', models.DateTimeField()),
                ('city', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='fleet.city')),
            ],
            options={
                'db_table': 'analytics_rider_leaderboard',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='RiderPerformanceSummary',
            fields=[
                ('rider', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='riders.rider')),
                ('total_orders', models.IntegerField()),
                ('completed_orders', models.IntegerField()),
                ('cancelled_orders', models.IntegerField()),
                ('failed_orders', models.IntegerField()),
                ('acceptance_rate', models.FloatField(help_text='Accepted / (accepted + rejected + expired) offers.', null=True)),
                ('on_time_rate', models.FloatField(help_text='Delivered within ANALYTICS_ON_TIME_MINUTES / delivered.', null=True)),
                ('average_rating', models.FloatField(null=True)),
                ('ratings', models.IntegerField()),
                ('on_duty_s_7d', models.BigIntegerField()),
                ('on_duty_s_30d', models.BigIntegerField()),
                ('refreshed_at', models.DateTimeField()),
                ('city', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='fleet.city')),
            ],
            options={
                'verbose_name_plural': 'rider performance summaries',
                'db_table': 'analytics_rider_performance_summary',
                'managed': False,
            },
        ),
    ]
