#!/bin/sh
# Backfills analytics.daily_order_metrics from raw.orders, one day at a time,
# starting after the checkpoint. (Written for the first load; it was never meant
# to be re-run.)
set -eu
DB="${POSTGRES_URL:-postgresql://app@127.0.0.1:5432/metrics}"
start=$(psql "$DB" -Atc "select coalesce(last_day + 1, date '2026-10-01') from analytics.backfill_checkpoint where job = 'daily_order_metrics'")
end=$(psql "$DB" -Atc "select max(ordered_at)::date from raw.orders")
day="$start"
while [ "$day" \< "$end" ] || [ "$day" = "$end" ]; do
  echo "loading $day"
  psql "$DB" -v ON_ERROR_STOP=1 -v day="$day" -f "$(dirname "$0")/load_day.sql"
  psql "$DB" -c "update analytics.backfill_checkpoint set last_day = '$day' where job = 'daily_order_metrics'"
  day=$(psql "$DB" -Atc "select date '$day' + 1")
done
