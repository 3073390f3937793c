DROP TRIGGER IF EXISTS wallet_ledgerkey_append_only ON wallet_ledgerkey;
DROP TABLE IF EXISTS wallet_ledgerentry;
DROP FUNCTION IF EXISTS wallet_ledger_refuse_change();
DROP FUNCTION IF EXISTS wallet_ledger_claim_key();
DROP SEQUENCE IF EXISTS wallet_ledgerentry_id_seq;
