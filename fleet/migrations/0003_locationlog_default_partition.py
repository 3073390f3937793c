"""The location log's DEFAULT partition (a point outside every month is kept, never refused) and the
partition functions that create a month while the default holds rows of it.

Database only: Django's model state does not know about partitions, so nothing changes there.
The reverse moves the default's points into their months before dropping it.
"""

from django.db import migrations

from config.migration_sql import run_sql_file


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0002_locationlog'),
    ]

    operations = [
        run_sql_file('fleet', '0003_locationlog_default_partition'),
    ]
