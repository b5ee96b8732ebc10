#!/bin/sh
# Builds the starting state: raw.events (3 days) and the wreck of a half-run hourly backfill.
set -eu
psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:5432/postgres" <<'SQL'
create role app login;
create database metrics owner app;
SQL
psql -X -q -v ON_ERROR_STOP=1 "postgresql://app@127.0.0.1:5432/metrics" <<'SQL'
create schema raw;
create schema analytics;

create table raw.events (
  event_id    bigint primary key,
  user_id     integer not null,
  event_type  text not null,
  occurred_at timestamptz not null,
  value       numeric(10, 2),
  is_test     boolean not null default false
);

-- 6,000 events over 2026-10-01 .. 2026-10-03 (UTC), deterministic; some test traffic.
insert into raw.events
select g,
       1 + (g * 48271) % 997,
       (array['view', 'view', 'view', 'click', 'click', 'purchase'])[1 + (g * 7) % 6],
       timestamptz '2026-10-01 00:00:00+00' + ((g * 15485863) % (3 * 86400)) * interval '1 second',
       case when (g * 7) % 6 = 5 then ((g * 7907) % 50000) / 100.0 end,
       g % 23 = 0
from generate_series(1::bigint, 6000) as g;

create table analytics.hourly_event_metrics (
  hour_utc    timestamp not null,
  event_type  text not null,
  events      integer not null,
  users       integer not null,
  total_value numeric(12, 2) not null
);

create table analytics.hourly_event_metrics_staging (like analytics.hourly_event_metrics);

create table analytics.backfill_checkpoint (
  job       text primary key,
  last_hour timestamp
);

create temporary view correct as
select date_trunc('hour', occurred_at at time zone 'UTC') as hour_utc, event_type,
       count(*)::int as events, count(distinct user_id)::int as users,
       coalesce(sum(value), 0)::numeric(12, 2) as total_value
from raw.events where not is_test group by 1, 2;

-- Day 1 was loaded by an old version that bucketed in New York wall-clock time and
-- counted test traffic; hours 00-11 of day 2 were loaded twice (a manual retry);
-- the job died at 12:00 on day 2 with that hour half-staged; day 3 never ran.
insert into analytics.hourly_event_metrics
select date_trunc('hour', occurred_at at time zone 'America/New_York'), event_type,
       count(*), count(distinct user_id), coalesce(sum(value), 0)
from raw.events
where occurred_at >= '2026-10-01 00:00+00' and occurred_at < '2026-10-02 00:00+00'
group by 1, 2;
insert into analytics.hourly_event_metrics
select * from correct where hour_utc >= '2026-10-02 00:00' and hour_utc < '2026-10-02 12:00';
insert into analytics.hourly_event_metrics
select * from correct where hour_utc >= '2026-10-02 00:00' and hour_utc < '2026-10-02 12:00';
insert into analytics.hourly_event_metrics_staging
select * from correct where hour_utc = '2026-10-02 12:00' and event_type <> 'purchase';

insert into analytics.backfill_checkpoint values ('hourly_event_metrics', '2026-10-02 11:00');
SQL
