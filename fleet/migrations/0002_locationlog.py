"""The GPS location log: range-partitioned by month on recorded_at, primary key (rider_id, recorded_at).

Django cannot create a partitioned table, so the database side is ``fleet/sql/0002_locationlog.sql``
and Django's model state is declared to match it.
"""

import django.db.models.deletion
from django.db import migrations, models

from config.migration_sql import run_sql_file


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0001_initial'),
        ('riders', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[run_sql_file('fleet', '0002_locationlog')],
            state_operations=[
                migrations.CreateModel(
                    name='LocationLog',
                    fields=[
                        ('pk', models.CompositePrimaryKey('rider', 'recorded_at', blank=True, editable=False, primary_key=True, serialize=False)),
                        ('rider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='riders.rider')),
                        ('recorded_at', models.DateTimeField()),
                        ('lat', models.FloatField()),
                        ('lon', models.FloatField()),
                        ('speed_kmh', models.FloatField(blank=True, null=True)),
                        ('heading_deg', models.SmallIntegerField(blank=True, null=True)),
                        ('accuracy_m', models.FloatField(blank=True, null=True)),
                        ('battery_pct', models.SmallIntegerField(blank=True, null=True)),
                        ('received_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'fleet_locationlog',
                        'constraints': [
                            models.CheckConstraint(condition=models.Q(('lat__gte', -90), ('lat__lte', 90), ('lon__gte', -180), ('lon__lte', 180)), name='location_in_range'),
                            models.CheckConstraint(condition=models.Q(('heading_deg__isnull', True), models.Q(('heading_deg__gte', 0), ('heading_deg__lt', 360)), _connector='OR'), name='location_heading_in_range'),
                            models.CheckConstraint(condition=models.Q(('battery_pct__isnull', True), models.Q(('battery_pct__gte', 0), ('battery_pct__lte', 100)), _connector='OR'), name='location_battery_in_range'),
                            models.CheckConstraint(condition=models.Q(('speed_kmh__isnull', True), ('speed_kmh__gte', 0), _connector='OR'), name='location_speed_non_negative'),
                        ],
                    },
                ),
            ],
        ),
    ]
