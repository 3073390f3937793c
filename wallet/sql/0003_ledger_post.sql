-- wallet_ledger_post: one posting in one statement (wallet.services.ledger_entry_post calls it).
--
-- Locks the rider's balance row (creating it if missing), then, under that lock: a key already claimed answers
-- 'exists' with its entry (or 'mismatch' when that entry is another rider's, account, type or amount); a
-- WALLET debit the balance cannot cover answers 'insufficient' and writes nothing; otherwise the entry is
-- inserted (its key claimed by the insert trigger) and the balance moved by its amount: 'created'. A refusal is
-- an answer, not an error, so a caller's transaction stays usable. One statement is atomic: a failure anywhere
-- (after the insert too) leaves neither the entry nor the balance change. created_at is the clock at the
-- insert, under the lock, so a rider's entries are in lock order by time as well as by id.
CREATE FUNCTION wallet_ledger_post(
    p_rider_id bigint,
    p_account varchar,
    p_entry_type varchar,
    p_amount_paise bigint,
    p_idempotency_key varchar,
    p_order_id bigint,
    p_reverses_id bigint,
    p_memo varchar,
    p_created_by_id integer
)
RETURNS TABLE (
    outcome text,
    balance_paise bigint,
    id bigint,
    rider_id bigint,
    account varchar,
    entry_type varchar,
    amount_paise bigint,
    idempotency_key varchar,
    order_id bigint,
    reverses_id bigint,
    memo varchar,
    created_by_id integer,
    created_at timestamptz
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_wallet bigint;
    v_key wallet_ledgerkey%ROWTYPE;
    v_entry wallet_ledgerentry%ROWTYPE;
BEGIN
    SELECT b.wallet_paise INTO v_wallet FROM wallet_balance b WHERE b.rider_id = p_rider_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO wallet_balance (rider_id, wallet_paise, cod_paise, entry_count, updated_at)
        VALUES (p_rider_id, 0, 0, 0, now())
        ON CONFLICT DO NOTHING;
        SELECT b.wallet_paise INTO v_wallet FROM wallet_balance b WHERE b.rider_id = p_rider_id FOR UPDATE;
    END IF;

    SELECT * INTO v_key FROM wallet_ledgerkey k WHERE k.idempotency_key = p_idempotency_key;
    IF FOUND THEN
        SELECT * INTO v_entry FROM wallet_ledgerentry e WHERE e.rider_id = v_key.rider_id AND e.id = v_key.entry_id;
        RETURN QUERY SELECT
            CASE WHEN (v_entry.rider_id, v_entry.account, v_entry.entry_type, v_entry.amount_paise)
                      = (p_rider_id, p_account, p_entry_type, p_amount_paise)
                 THEN 'exists' ELSE 'mismatch' END,
            v_wallet, v_entry.id, v_entry.rider_id, v_entry.account, v_entry.entry_type, v_entry.amount_paise,
            v_entry.idempotency_key, v_entry.order_id, v_entry.reverses_id, v_entry.memo, v_entry.created_by_id,
            v_entry.created_at;
        RETURN;
    END IF;

    IF p_account = 'WALLET' AND v_wallet + p_amount_paise < 0 THEN
        RETURN QUERY SELECT 'insufficient', v_wallet, NULL::bigint, NULL::bigint, NULL::varchar, NULL::varchar,
            NULL::bigint, NULL::varchar, NULL::bigint, NULL::bigint, NULL::varchar, NULL::integer, NULL::timestamptz;
        RETURN;
    END IF;

    INSERT INTO wallet_ledgerentry (rider_id, account, entry_type, amount_paise, idempotency_key, order_id,
                                    reverses_id, memo, created_by_id, created_at)
    VALUES (p_rider_id, p_account, p_entry_type, p_amount_paise, p_idempotency_key, p_order_id,
            p_reverses_id, p_memo, p_created_by_id, clock_timestamp())
    RETURNING * INTO v_entry;

    IF p_account = 'WALLET' THEN
        UPDATE wallet_balance b
        SET wallet_paise = b.wallet_paise + p_amount_paise, entry_count = b.entry_count + 1, updated_at = now()
        WHERE b.rider_id = p_rider_id
        RETURNING b.wallet_paise INTO v_wallet;
    ELSE
        UPDATE wallet_balance b
        SET cod_paise = b.cod_paise + p_amount_paise, entry_count = b.entry_count + 1, updated_at = now()
        WHERE b.rider_id = p_rider_id;
    END IF;

    RETURN QUERY SELECT 'created', v_wallet, v_entry.id, v_entry.rider_id, v_entry.account, v_entry.entry_type,
        v_entry.amount_paise, v_entry.idempotency_key, v_entry.order_id, v_entry.reverses_id, v_entry.memo,
        v_entry.created_by_id, v_entry.created_at;
END;
$$;
