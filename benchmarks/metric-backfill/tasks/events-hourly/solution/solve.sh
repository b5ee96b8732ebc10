#!/bin/sh
# Reference solution for events-hourly: one idempotent transaction that rebuilds the
# table from raw.events in UTC, enforces the (hour, type) key and cleans up; documented and run.
set -eu
cd "${WORKSPACE:?WORKSPACE is not set}"
rm -f backfill/load_hour.sql

cat > backfill/backfill.sql <<'SQL'
-- Rebuilds analytics.hourly_event_metrics from raw.events. Re-runnable at will.
begin;

create index if not exists events_occurred_at_idx on raw.events (occurred_at);

-- Compute the correct rows once.
create temporary table wanted on commit drop as
select date_trunc('hour', e.occurred_at at time zone 'UTC') as hour_utc, e.event_type,
       count(*)::int as events, count(distinct e.user_id)::int as users,
       coalesce(sum(e.value), 0)::numeric(12, 2) as total_value
from raw.events e
where not e.is_test
group by 1, 2;

-- Drop duplicates and rows keyed in local time or otherwise unknown to the source.
delete from analytics.hourly_event_metrics a
using analytics.hourly_event_metrics b
where a.hour_utc = b.hour_utc and a.event_type = b.event_type and a.ctid > b.ctid;
delete from analytics.hourly_event_metrics m
where not exists (select 1 from wanted w where w.hour_utc = m.hour_utc and w.event_type = m.event_type);
create unique index if not exists hourly_event_metrics_key
  on analytics.hourly_event_metrics (hour_utc, event_type);

insert into analytics.hourly_event_metrics (hour_utc, event_type, events, users, total_value)
select hour_utc, event_type, events, users, total_value from wanted
on conflict (hour_utc, event_type) do update
set events = excluded.events, users = excluded.users, total_value = excluded.total_value;

drop table if exists analytics.hourly_event_metrics_staging;

insert into analytics.backfill_checkpoint (job, last_hour)
select 'hourly_event_metrics', max(hour_utc) from wanted
on conflict (job) do update set last_hour = excluded.last_hour;

commit;
SQL

cat > backfill/run_backfill.sh <<'SH'
#!/bin/sh
# Rebuilds analytics.hourly_event_metrics (UTC hours) from raw.events in one
# transaction; idempotent. Connection: $POSTGRES_URL only.
set -eu
: "${POSTGRES_URL:?POSTGRES_URL must name the metrics database}"
psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_URL" -f "$(dirname "$0")/backfill.sql"
SH
chmod +x backfill/run_backfill.sh

cat > README.md <<'MD'
# Hourly event metrics backfill

Run `backfill/run_backfill.sh` (with `POSTGRES_URL` set) to rebuild
`analytics.hourly_event_metrics` from `raw.events`; see `docs/metric.md`.

It is safe to re-run: everything happens in one transaction, hours are UTC, a
unique index on `(hour_utc, event_type)` rejects duplicates, every hour is
upserted, and `analytics.backfill_checkpoint.last_hour` is set to the last hour.
MD

./backfill/run_backfill.sh
