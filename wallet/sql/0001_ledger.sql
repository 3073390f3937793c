-- The wallet ledger: append-only, hash-partitioned by rider_id into 8 partitions.
-- Its primary key holds the partition key, as PostgreSQL requires: (rider_id, id).
-- PostgreSQL 15 has no identity columns on partitioned tables, so id comes from an owned sequence.
CREATE SEQUENCE wallet_ledgerentry_id_seq AS bigint;

CREATE TABLE wallet_ledgerentry (
    id               bigint       NOT NULL DEFAULT nextval('wallet_ledgerentry_id_seq'),
    rider_id         bigint       NOT NULL
        CONSTRAINT wallet_ledgerentry_rider_id_fk REFERENCES riders_rider (id) DEFERRABLE INITIALLY DEFERRED,
    account          varchar(8)   NOT NULL,
    entry_type       varchar(16)  NOT NULL,
    amount_paise     bigint       NOT NULL,
    idempotency_key  varchar(128) NOT NULL,
    order_id         bigint       NULL
        CONSTRAINT wallet_ledgerentry_order_id_fk REFERENCES orders_order (id) DEFERRABLE INITIALLY DEFERRED,
    reverses_id      bigint       NULL,
    memo             varchar(255) NOT NULL,
    created_by_id    integer      NULL
        CONSTRAINT wallet_ledgerentry_created_by_id_fk REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
    created_at       timestamptz  NOT NULL,
    CONSTRAINT wallet_ledgerentry_pkey PRIMARY KEY (rider_id, id),
    CONSTRAINT ledger_idempotency_per_rider UNIQUE (rider_id, idempotency_key),
    -- A reversal points at an earlier entry of the same rider (checked at once, not at commit).
    CONSTRAINT wallet_ledgerentry_reverses_fk FOREIGN KEY (rider_id, reverses_id)
        REFERENCES wallet_ledgerentry (rider_id, id),
    CONSTRAINT ledger_entry_type_valid CHECK (
        entry_type IN ('EARNING', 'INCENTIVE', 'COD_COLLECTED', 'COD_DEPOSIT', 'WITHDRAWAL', 'ADJUSTMENT', 'REVERSAL')),
    CONSTRAINT ledger_account_valid CHECK (account IN ('WALLET', 'COD')),
    CONSTRAINT ledger_amount_non_zero CHECK (amount_paise <> 0),
    CONSTRAINT ledger_credit_positive CHECK (
        entry_type NOT IN ('EARNING', 'INCENTIVE', 'COD_DEPOSIT') OR amount_paise > 0),
    CONSTRAINT ledger_debit_negative CHECK (entry_type NOT IN ('COD_COLLECTED', 'WITHDRAWAL') OR amount_paise < 0),
    CONSTRAINT ledger_cod_types_on_cod CHECK (entry_type NOT IN ('COD_COLLECTED', 'COD_DEPOSIT') OR account = 'COD'),
    CONSTRAINT ledger_reversal_points_at_entry CHECK (
        (entry_type = 'REVERSAL' AND reverses_id IS NOT NULL) OR (entry_type <> 'REVERSAL' AND reverses_id IS NULL))
) PARTITION BY HASH (rider_id);

ALTER SEQUENCE wallet_ledgerentry_id_seq OWNED BY wallet_ledgerentry.id;

CREATE TABLE wallet_ledgerentry_p0 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE wallet_ledgerentry_p1 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE wallet_ledgerentry_p2 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE wallet_ledgerentry_p3 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE wallet_ledgerentry_p4 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE wallet_ledgerentry_p5 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE wallet_ledgerentry_p6 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE wallet_ledgerentry_p7 PARTITION OF wallet_ledgerentry FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- A rider's statement and balance reconciliation read by rider and time.
CREATE INDEX ledger_rider_created_idx ON wallet_ledgerentry (rider_id, created_at DESC);
CREATE INDEX ledger_id_idx ON wallet_ledgerentry (id);
CREATE INDEX ledger_order_idx ON wallet_ledgerentry (order_id) WHERE order_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_reversed_once ON wallet_ledgerentry (rider_id, reverses_id) WHERE reverses_id IS NOT NULL;

-- Idempotency keys are unique fleet-wide: every insert claims its key in wallet_ledgerkey, whose
-- primary key refuses a second claim (and with it the whole posting).
CREATE FUNCTION wallet_ledger_claim_key() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO wallet_ledgerkey (idempotency_key, rider_id, entry_id)
    VALUES (NEW.idempotency_key, NEW.rider_id, NEW.id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER wallet_ledger_claim_key
    BEFORE INSERT ON wallet_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_claim_key();

-- Append-only: the database itself refuses to change or remove a posting. Corrections are
-- REVERSAL entries. (TRUNCATE stays an owner's operation: the test suite flushes with it.)
CREATE FUNCTION wallet_ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused; post a reversal entry instead', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER wallet_ledger_append_only
    BEFORE UPDATE OR DELETE ON wallet_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_refuse_change();

CREATE TRIGGER wallet_ledgerkey_append_only
    BEFORE UPDATE OR DELETE ON wallet_ledgerkey
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_refuse_change();
