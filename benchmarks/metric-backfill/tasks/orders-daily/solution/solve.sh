#!/bin/sh
# Reference solution for orders-daily: replace the append-only day loop with one
# idempotent transaction (dedupe, enforce the key, upsert every day, clean up),
# document it, and run it.
set -eu
cd "${WORKSPACE:?WORKSPACE is not set}"
rm -f backfill/load_day.sql

cat > backfill/backfill.sql <<'SQL'
-- Rebuilds analytics.daily_order_metrics from raw.orders. Safe to run any number of times.
begin;

-- Per-day reads of the source use this index instead of a full scan.
create index if not exists orders_ordered_at_idx on raw.orders (ordered_at);

-- Remove duplicated days left by earlier retries, then let the database refuse new ones.
delete from analytics.daily_order_metrics a
using analytics.daily_order_metrics b
where a.day = b.day and a.ctid > b.ctid;
create unique index if not exists daily_order_metrics_day_key on analytics.daily_order_metrics (day);

-- Recompute every day (fixes stale rows and fills gaps); cancelled orders never count.
insert into analytics.daily_order_metrics (day, orders, customers, revenue_cents)
select (o.ordered_at at time zone 'UTC')::date, count(*), count(distinct o.customer_id), sum(o.amount_cents)
from raw.orders o
where o.status <> 'cancelled'
group by 1
on conflict (day) do update
set orders = excluded.orders, customers = excluded.customers, revenue_cents = excluded.revenue_cents
where (analytics.daily_order_metrics.orders, analytics.daily_order_metrics.customers, analytics.daily_order_metrics.revenue_cents)
      is distinct from (excluded.orders, excluded.customers, excluded.revenue_cents);

-- Days the source no longer has do not belong in the metric.
delete from analytics.daily_order_metrics m
where not exists (
  select 1 from raw.orders o
  where o.status <> 'cancelled'
    and o.ordered_at >= m.day::timestamp at time zone 'UTC'
    and o.ordered_at < (m.day + 1)::timestamp at time zone 'UTC'
);

-- The failed run's staging table is not used any more.
drop table if exists analytics.daily_order_metrics_staging;

insert into analytics.backfill_checkpoint (job, last_day)
select 'daily_order_metrics', max(day) from analytics.daily_order_metrics
on conflict (job) do update set last_day = excluded.last_day;

commit;
SQL

cat > backfill/run_backfill.sh <<'SH'
#!/bin/sh
# Rebuilds analytics.daily_order_metrics from raw.orders in one transaction.
# Idempotent: re-running it leaves the same table. Connection: $POSTGRES_URL.
set -eu
: "${POSTGRES_URL:?POSTGRES_URL must name the metrics database}"
psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_URL" -f "$(dirname "$0")/backfill.sql"
SH
chmod +x backfill/run_backfill.sh

cat > README.md <<'MD'
# Daily order metrics backfill

`backfill/run_backfill.sh` rebuilds `analytics.daily_order_metrics` from
`raw.orders` (definition: `docs/metric.md`) in a single transaction.

Re-run it at any time; it is idempotent:

    POSTGRES_URL=... ./backfill/run_backfill.sh

- A unique index on `day` makes a duplicated day impossible.
- Every day is recomputed (upsert), so stale rows are corrected and gaps filled.
- `analytics.backfill_checkpoint` records the last day loaded.
MD

./backfill/run_backfill.sh
