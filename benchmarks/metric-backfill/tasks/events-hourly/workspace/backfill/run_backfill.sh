#!/bin/sh
# Fills analytics.hourly_event_metrics hour by hour after the checkpoint.
set -eu
DB="${POSTGRES_URL:-postgresql://app@127.0.0.1:5432/metrics}"
hour=$(psql "$DB" -Atc "select coalesce(last_hour + interval '1 hour', timestamp '2026-10-01 00:00') from analytics.backfill_checkpoint where job = 'hourly_event_metrics'")
last=$(psql "$DB" -Atc "select max(date_trunc('hour', occurred_at)) from raw.events")
while [ "$(psql "$DB" -Atc "select timestamp '$hour' <= timestamp '$last'")" = t ]; do
  echo "loading $hour"
  psql "$DB" -v ON_ERROR_STOP=1 -v hour="$hour" -f "$(dirname "$0")/load_hour.sql"
  psql "$DB" -c "update analytics.backfill_checkpoint set last_hour = '$hour' where job = 'hourly_event_metrics'"
  hour=$(psql "$DB" -Atc "select timestamp '$hour' + interval '1 hour'")
done
