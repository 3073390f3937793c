-- The analytics read model: three materialized views over orders, riders, the wallet and fleet distances.
--
-- Each has a unique index (REFRESH ... CONCURRENTLY needs one: readers are never blocked) and is created
-- WITH NO DATA: migration 0001 populates them once, and Celery beat refreshes them (analytics.services).
-- Two settings of the refreshing transaction feed them, set by analytics.services.view_refresh with
-- set_config(..., true): analytics.time_zone (the portal's TIME_ZONE: what "today" means) and
-- analytics.on_time_s (a delivery within this many seconds of the order's creation is on time). A refresh
-- without them fails ("unrecognized configuration parameter") rather than computing another day's figures.

-- The instant the portal's local day starts, ``days`` days after today's (0: today's midnight, 1: tomorrow's).
-- A one-expression STABLE SQL function: PostgreSQL inlines it, so the planner sees now() and estimates the
-- day's rows from the statistics (a value from a sub-SELECT it cannot, and then it scans whole tables).
CREATE FUNCTION analytics_local_midnight(days integer) RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT (date_trunc('day', now() AT TIME ZONE current_setting('analytics.time_zone')) + make_interval(days => days))
        AT TIME ZONE current_setting('analytics.time_zone')
$$;

-- Per city, now: riders, today's orders by their current status, deliveries today, distance today, COD held.
CREATE MATERIALIZED VIEW analytics_dashboard_stats AS
WITH rider_counts AS (
    SELECT
        city_id,
        count(*) FILTER (WHERE status = 'ACTIVE' AND kyc_status = 'APPROVED') AS active_riders,
        count(*) FILTER (WHERE duty_status = 'ON') AS on_duty_riders
    FROM riders_rider
    GROUP BY city_id
),
created_today AS (
    -- order_city_status_created_idx: (city, status, created_at) ranges of today only.
    SELECT
        city_id,
        count(*) AS orders_today,
        count(*) FILTER (WHERE status = 'CREATED') AS orders_created,
        count(*) FILTER (WHERE status = 'ASSIGNED') AS orders_assigned,
        count(*) FILTER (WHERE status = 'ACCEPTED') AS orders_accepted,
        count(*) FILTER (WHERE status = 'PICKED_UP') AS orders_picked_up,
        count(*) FILTER (WHERE status = 'DELIVERED') AS orders_delivered,
        count(*) FILTER (WHERE status = 'CANCELLED') AS orders_cancelled,
        count(*) FILTER (WHERE status = 'FAILED') AS orders_failed
    FROM orders_order
    WHERE created_at >= analytics_local_midnight(0) AND created_at < analytics_local_midnight(1)
    GROUP BY city_id
),
delivered_today AS (
    -- Orders delivered today, whenever created. delivered_at has no index; every transition writes an
    -- OrderEvent in the same transaction (occurred_at is indexed), so the day's DELIVERED events find the
    -- candidates (an hour's margin: the event's clock and delivered_at differ by the transaction's
    -- milliseconds) and the order's own delivered_at decides.
    SELECT
        o.city_id,
        count(*) AS delivered_today,
        sum(extract(epoch FROM o.delivered_at - o.created_at)) AS delivery_s_sum
    FROM orders_orderevent AS e
    JOIN orders_order AS o ON o.id = e.order_id
    WHERE e.to_status = 'DELIVERED'
      AND e.occurred_at >= analytics_local_midnight(0) - interval '1 hour'
      AND e.occurred_at < analytics_local_midnight(1) + interval '1 hour'
      AND o.status = 'DELIVERED'
      AND o.delivered_at >= analytics_local_midnight(0)
      AND o.delivered_at < analytics_local_midnight(1)
    GROUP BY o.city_id
),
distance_today AS (
    -- fleet.rider_distances_compute keeps one row per rider and local day (every 15 minutes).
    SELECT r.city_id, sum(d.distance_m) AS distance_m
    FROM fleet_riderdaydistance AS d
    JOIN riders_rider AS r ON r.id = d.rider_id
    WHERE d.day = (now() AT TIME ZONE current_setting('analytics.time_zone'))::date
    GROUP BY r.city_id
),
cod_held AS (
    -- wallet.selectors.rider_cod_held_paise: max(0, -cod_paise) per rider.
    SELECT r.city_id, sum(-b.cod_paise) AS cod_paise
    FROM wallet_balance AS b
    JOIN riders_rider AS r ON r.id = b.rider_id
    WHERE b.cod_paise < 0
    GROUP BY r.city_id
)
SELECT
    c.id AS city_id,
    c.code AS city_code,
    (now() AT TIME ZONE current_setting('analytics.time_zone'))::date AS day,
    coalesce(rc.active_riders, 0)::integer AS active_riders,
    coalesce(rc.on_duty_riders, 0)::integer AS on_duty_riders,
    coalesce(ct.orders_today, 0)::integer AS orders_today,
    coalesce(ct.orders_created, 0)::integer AS orders_created,
    coalesce(ct.orders_assigned, 0)::integer AS orders_assigned,
    coalesce(ct.orders_accepted, 0)::integer AS orders_accepted,
    coalesce(ct.orders_picked_up, 0)::integer AS orders_picked_up,
    coalesce(ct.orders_delivered, 0)::integer AS orders_delivered,
    coalesce(ct.orders_cancelled, 0)::integer AS orders_cancelled,
    coalesce(ct.orders_failed, 0)::integer AS orders_failed,
    coalesce(dt.delivered_today, 0)::integer AS delivered_today,
    (dt.delivery_s_sum / nullif(dt.delivered_today, 0))::float8 AS average_delivery_s,
    coalesce(dd.distance_m, 0)::bigint AS distance_today_m,
    coalesce(cod.cod_paise, 0)::bigint AS cod_outstanding_paise,
    now() AS refreshed_at
FROM fleet_city AS c
LEFT JOIN rider_counts AS rc ON rc.city_id = c.id
LEFT JOIN created_today AS ct ON ct.city_id = c.id
LEFT JOIN delivered_today AS dt ON dt.city_id = c.id
LEFT JOIN distance_today AS dd ON dd.city_id = c.id
LEFT JOIN cod_held AS cod ON cod.city_id = c.id
WITH NO DATA;

CREATE UNIQUE INDEX analytics_dashboard_stats_city_uniq ON analytics_dashboard_stats (city_id);
CREATE UNIQUE INDEX analytics_dashboard_stats_code_uniq ON analytics_dashboard_stats (city_code);


-- Per city, the last 7 days: what each rider earned, delivered and was rated, ranked by earnings.
-- now() - interval '7 days' is written out each time (not a CTE): the planner then estimates the period's rows.
CREATE MATERIALIZED VIEW analytics_rider_leaderboard AS
WITH earnings AS (
    -- Earnings and incentives posted in the period, less reversals of earnings and incentives posted in it.
    SELECT e.rider_id, sum(e.amount_paise) AS earnings_paise
    FROM wallet_ledgerentry AS e
    WHERE e.created_at >= now() - interval '7 days'
      AND e.account = 'WALLET'
      AND (
          e.entry_type IN ('EARNING', 'INCENTIVE')
          OR (
              e.entry_type = 'REVERSAL'
              AND EXISTS (
                  SELECT 1 FROM wallet_ledgerentry AS reversed
                  WHERE reversed.rider_id = e.rider_id
                    AND reversed.id = e.reverses_id
                    AND reversed.entry_type IN ('EARNING', 'INCENTIVE')
              )
          )
      )
    GROUP BY e.rider_id
),
completed AS (
    -- Delivered in the period (candidates from the indexed DELIVERED events, as in dashboard_stats).
    SELECT o.rider_id, count(*) AS completed_orders
    FROM orders_orderevent AS ev
    JOIN orders_order AS o ON o.id = ev.order_id
    WHERE ev.to_status = 'DELIVERED'
      AND ev.occurred_at >= now() - interval '7 days 1 hour'
      AND o.status = 'DELIVERED'
      AND o.delivered_at >= now() - interval '7 days'
    GROUP BY o.rider_id
),
ratings AS (
    SELECT rider_id, avg(stars)::float8 AS average_rating, count(*) AS ratings
    FROM riders_rating
    WHERE created_at >= now() - interval '7 days'
    GROUP BY rider_id
),
scored AS (
    SELECT
        r.city_id,
        r.id AS rider_id,
        r.name AS rider_name,
        coalesce(e.earnings_paise, 0)::bigint AS earnings_paise,
        coalesce(c.completed_orders, 0)::integer AS completed_orders,
        rt.average_rating,
        coalesce(rt.ratings, 0)::integer AS ratings
    FROM riders_rider AS r
    LEFT JOIN earnings AS e ON e.rider_id = r.id
    LEFT JOIN completed AS c ON c.rider_id = r.id
    LEFT JOIN ratings AS rt ON rt.rider_id = r.id
    WHERE e.rider_id IS NOT NULL OR c.rider_id IS NOT NULL
)
SELECT
    city_id,
    rider_id,
    rider_name,
    earnings_paise,
    completed_orders,
    average_rating,
    ratings,
    rank() OVER (PARTITION BY city_id ORDER BY earnings_paise DESC, completed_orders DESC)::integer AS rank,
    now() - interval '7 days' AS period_starts_at,
    now() AS refreshed_at
FROM scored
WITH NO DATA;

CREATE UNIQUE INDEX analytics_rider_leaderboard_rider_uniq ON analytics_rider_leaderboard (rider_id);
CREATE INDEX analytics_rider_leaderboard_city_rank_idx ON analytics_rider_leaderboard (city_id, rank, rider_id);


-- Per rider, all time (duty: the last 7 and 30 days): orders by outcome, acceptance, punctuality, rating.
CREATE MATERIALIZED VIEW analytics_rider_performance_summary AS
WITH order_counts AS (
    -- An order counts for the rider who has it now (a reassigned order for the last rider).
    SELECT
        rider_id,
        count(*) AS total_orders,
        count(*) FILTER (WHERE status = 'DELIVERED') AS completed_orders,
        count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled_orders,
        count(*) FILTER (WHERE status = 'FAILED') AS failed_orders,
        count(*) FILTER (
            WHERE status = 'DELIVERED'
              AND delivered_at <= created_at + make_interval(secs => current_setting('analytics.on_time_s')::float8)
        ) AS on_time_orders
    FROM orders_order
    WHERE rider_id IS NOT NULL
    GROUP BY rider_id
),
offers AS (
    -- Offers the rider answered or let expire; pending and withdrawn ones say nothing about the rider.
    SELECT
        rider_id,
        count(*) FILTER (WHERE status = 'ACCEPTED') AS accepted,
        count(*) FILTER (WHERE status IN ('ACCEPTED', 'REJECTED', 'EXPIRED')) AS decided
    FROM orders_orderoffer
    GROUP BY rider_id
),
ratings AS (
    SELECT rider_id, avg(stars)::float8 AS average_rating, count(*) AS ratings
    FROM riders_rating
    GROUP BY rider_id
),
duty AS (
    -- Each stretch clipped to the window; an open one runs until now.
    SELECT
        rider_id,
        sum(extract(epoch FROM coalesce(ended_at, now()) - greatest(started_at, now() - interval '7 days')))
            FILTER (WHERE coalesce(ended_at, now()) > now() - interval '7 days') AS on_duty_s_7d,
        sum(extract(epoch FROM coalesce(ended_at, now()) - greatest(started_at, now() - interval '30 days')))
            AS on_duty_s_30d
    FROM riders_dutylog
    WHERE coalesce(ended_at, now()) > now() - interval '30 days'
    GROUP BY rider_id
)
SELECT
    r.id AS rider_id,
    r.city_id,
    coalesce(oc.total_orders, 0)::integer AS total_orders,
    coalesce(oc.completed_orders, 0)::integer AS completed_orders,
    coalesce(oc.cancelled_orders, 0)::integer AS cancelled_orders,
    coalesce(oc.failed_orders, 0)::integer AS failed_orders,
    (of.accepted::float8 / nullif(of.decided, 0)) AS acceptance_rate,
    (oc.on_time_orders::float8 / nullif(oc.completed_orders, 0)) AS on_time_rate,
    rt.average_rating,
    coalesce(rt.ratings, 0)::integer AS ratings,
    coalesce(round(du.on_duty_s_7d), 0)::bigint AS on_duty_s_7d,
    coalesce(round(du.on_duty_s_30d), 0)::bigint AS on_duty_s_30d,
    now() AS refreshed_at
FROM riders_rider AS r
LEFT JOIN order_counts AS oc ON oc.rider_id = r.id
LEFT JOIN offers AS of ON of.rider_id = r.id
LEFT JOIN ratings AS rt ON rt.rider_id = r.id
LEFT JOIN duty AS du ON du.rider_id = r.id
WITH NO DATA;

CREATE UNIQUE INDEX analytics_rider_performance_rider_uniq ON analytics_rider_performance_summary (rider_id);
CREATE INDEX analytics_rider_performance_city_idx ON analytics_rider_performance_summary (city_id);
