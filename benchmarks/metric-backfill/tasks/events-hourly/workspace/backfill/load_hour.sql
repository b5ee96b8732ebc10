-- Stages one hour (:'hour') of events, then appends it to the metric table.
insert into analytics.hourly_event_metrics_staging
select date_trunc('hour', occurred_at), event_type, count(*), count(distinct user_id), coalesce(sum(value), 0)
from raw.events
where date_trunc('hour', occurred_at) = :'hour'
group by 1, 2;

insert into analytics.hourly_event_metrics select * from analytics.hourly_event_metrics_staging;
