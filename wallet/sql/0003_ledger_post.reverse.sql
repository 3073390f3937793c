DROP FUNCTION IF EXISTS wallet_ledger_post(bigint, varchar, varchar, bigint, varchar, bigint, bigint, varchar, integer);
