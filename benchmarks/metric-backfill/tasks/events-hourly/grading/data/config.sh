# What the generic checks of this task compare (sourced by grading/lib.sh).
TARGET=analytics.hourly_event_metrics
KEY_COLUMNS="hour_utc, event_type"
VALUE_COLUMNS="events, users, total_value"
EXPECTED_SQL="select date_trunc('hour', occurred_at at time zone 'UTC') as hour_utc, event_type, count(*)::int as events, count(distinct user_id)::int as users, coalesce(sum(value), 0)::numeric(12, 2) as total_value from raw.events where not is_test group by 1, 2"
SOURCE_TABLE=raw.events
SOURCE_TIME_COLUMN=occurred_at
STAGING_TABLE=analytics.hourly_event_metrics_staging
CHECKPOINT_SQL="select last_hour::text from analytics.backfill_checkpoint where job = 'hourly_event_metrics'"
CHECKPOINT_WANT_SQL="select max(date_trunc('hour', occurred_at at time zone 'UTC'))::text from raw.events where not is_test"
BACKFILL_SCRIPT=backfill/run_backfill.sh
DASHBOARD_SQL="select hour_utc, sum(events) from analytics.hourly_event_metrics where hour_utc >= timestamp '2026-10-02 00:00' and hour_utc < timestamp '2026-10-03 00:00' group by 1 order by 1"
