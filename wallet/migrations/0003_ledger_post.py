from django.db import migrations

from config.migration_sql import run_sql_file


class Migration(migrations.Migration):

    dependencies = [
        ('wallet', '0002_reconciliation'),
    ]

    # One posting in one statement: lock, idempotency, balance check, insert, balance move.
    # SQL: wallet/sql/0003_ledger_post.sql.
    operations = [
        run_sql_file('wallet', '0003_ledger_post'),
    ]
