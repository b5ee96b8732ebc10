-- Loads one day (:'day') into the staging table, then appends it to the metric table.
insert into analytics.daily_order_metrics_staging (day, orders, customers, revenue_cents)
select ordered_at::date, count(*), count(distinct customer_id), sum(amount_cents)
from raw.orders
where ordered_at::date = :'day'
group by 1;

insert into analytics.daily_order_metrics select * from analytics.daily_order_metrics_staging;
