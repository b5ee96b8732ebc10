# What the generic checks of this task compare (sourced by grading/lib.sh).
TARGET=analytics.daily_order_metrics
KEY_COLUMNS=day
VALUE_COLUMNS="orders, customers, revenue_cents"
EXPECTED_SQL="select (ordered_at at time zone 'UTC')::date as day, count(*)::int as orders, count(distinct customer_id)::int as customers, sum(amount_cents)::bigint as revenue_cents from raw.orders where status <> 'cancelled' group by 1"
SOURCE_TABLE=raw.orders
SOURCE_TIME_COLUMN=ordered_at
STAGING_TABLE=analytics.daily_order_metrics_staging
CHECKPOINT_SQL="select last_day::text from analytics.backfill_checkpoint where job = 'daily_order_metrics'"
CHECKPOINT_WANT_SQL="select max((ordered_at at time zone 'UTC')::date)::text from raw.orders"
BACKFILL_SCRIPT=backfill/run_backfill.sh
DASHBOARD_SQL="select day, orders, revenue_cents from analytics.daily_order_metrics where day >= date '2026-10-01' and day < date '2026-10-15' order by day"
