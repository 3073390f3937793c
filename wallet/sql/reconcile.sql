-- Nightly reconciliation (wallet.services.ledger_reconcile): every rider's balance row against the sum of
-- their ledger entries, per account, and the entry count, in ONE statement (one snapshot, one aggregate
-- over the ledger). A rider with entries and no balance row, or a balance row that is not all zero and no
-- entries, is drift too. Drifting riders are inserted into wallet_reconciliationdrift for the run;
-- nothing is corrected. Answers (riders checked, entries checked, riders drifting).
WITH ledger AS (
    SELECT rider_id,
           coalesce(sum(amount_paise) FILTER (WHERE account = 'WALLET'), 0) AS wallet_paise,
           coalesce(sum(amount_paise) FILTER (WHERE account = 'COD'), 0)    AS cod_paise,
           count(*)                                                         AS entry_count
    FROM wallet_ledgerentry
    GROUP BY rider_id
),
compared AS (
    SELECT coalesce(b.rider_id, l.rider_id) AS rider_id,
           b.wallet_paise                  AS balance_wallet_paise,
           coalesce(l.wallet_paise, 0)     AS ledger_wallet_paise,
           b.cod_paise                     AS balance_cod_paise,
           coalesce(l.cod_paise, 0)        AS ledger_cod_paise,
           b.entry_count                   AS balance_entry_count,
           coalesce(l.entry_count, 0)      AS ledger_entry_count
    FROM wallet_balance b
    FULL OUTER JOIN ledger l ON l.rider_id = b.rider_id
),
drift AS (
    INSERT INTO wallet_reconciliationdrift (
        run_id, rider_id, balance_wallet_paise, ledger_wallet_paise, balance_cod_paise, ledger_cod_paise,
        balance_entry_count, ledger_entry_count)
    SELECT %(run_id)s, rider_id, balance_wallet_paise, ledger_wallet_paise, balance_cod_paise, ledger_cod_paise,
           balance_entry_count, ledger_entry_count
    FROM compared
    WHERE balance_wallet_paise IS DISTINCT FROM ledger_wallet_paise
       OR balance_cod_paise IS DISTINCT FROM ledger_cod_paise
       OR balance_entry_count IS DISTINCT FROM ledger_entry_count
    RETURNING rider_id
)
SELECT (SELECT count(*) FROM compared),
       (SELECT coalesce(sum(ledger_entry_count), 0) FROM compared),
       (SELECT count(*) FROM drift);
