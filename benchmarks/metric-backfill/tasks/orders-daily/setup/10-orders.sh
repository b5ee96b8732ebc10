#!/bin/sh
# Builds the starting state: raw.orders (14 days) and the wreck of a half-run backfill.
set -eu
psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:5432/postgres" <<'SQL'
create role app login;
create database metrics owner app;
SQL
psql -X -q -v ON_ERROR_STOP=1 "postgresql://app@127.0.0.1:5432/metrics" <<'SQL'
create schema raw;
create schema analytics;

create table raw.orders (
  order_id     bigint primary key,
  customer_id  integer not null,
  ordered_at   timestamptz not null,
  amount_cents integer not null,
  status       text not null check (status in ('completed', 'refunded', 'cancelled'))
);

-- 2,800 orders spread over 2026-10-01 .. 2026-10-14 (UTC), deterministic.
insert into raw.orders
select g,
       1 + (g * 7919) % 613,
       timestamptz '2026-10-01 00:00:00+00' + ((g * 104729) % (14 * 86400)) * interval '1 second',
       500 + (g * 31337) % 20000,
       case when g % 17 = 0 then 'cancelled' when g % 11 = 0 then 'refunded' else 'completed' end
from generate_series(1, 2800) as g;

create table analytics.daily_order_metrics (
  day           date not null,
  orders        integer not null,
  customers     integer not null,
  revenue_cents bigint not null
);

create table analytics.daily_order_metrics_staging (like analytics.daily_order_metrics);

create table analytics.backfill_checkpoint (
  job      text primary key,
  last_day date
);

-- What the failed runs left behind: days 1-5 and 7-8 loaded, 3 and 5 loaded twice
-- (a retry), 6 lost when a run died between staging and the final insert, 2 loaded
-- by the first version that still counted cancelled orders; 9 sits in staging only.
create temporary view correct as
select (ordered_at at time zone 'UTC')::date as day, count(*)::int as orders,
       count(distinct customer_id)::int as customers, sum(amount_cents)::bigint as revenue_cents
from raw.orders where status <> 'cancelled' group by 1;

insert into analytics.daily_order_metrics
select * from correct where day in ('2026-10-01', '2026-10-03', '2026-10-04', '2026-10-05', '2026-10-07', '2026-10-08');
insert into analytics.daily_order_metrics
select * from correct where day in ('2026-10-03', '2026-10-05');
insert into analytics.daily_order_metrics
select (ordered_at at time zone 'UTC')::date, count(*), count(distinct customer_id), sum(amount_cents)
from raw.orders where (ordered_at at time zone 'UTC')::date = '2026-10-02' group by 1;
insert into analytics.daily_order_metrics_staging
select * from correct where day in ('2026-10-06', '2026-10-09');

insert into analytics.backfill_checkpoint values ('daily_order_metrics', '2026-10-08');
SQL
