#!/bin/sh
# Reference solution for q3-revenue-dashboard: fields are quoted only where RFC 4180 needs it.
set -eu
cd "${WORKSPACE:?WORKSPACE is not set}"
mkdir -p out
cat > out/audit.csv <<'CSV'
metric_name,severity,reason_class,dashboard_formula,approved_formula,primary_field
Checkout Conversion,high,wrong_denominator,count(distinct session_id) where order_id is not null / count(distinct session_id),count(distinct session_id) where order_id is not null / count(distinct session_id) where cart_created = true,session_id
Net Sales,high,revenue_basis,sum(order_total),"sum(order_total - coalesce(refund_amount, 0))",order_total
Average Delivery Time,medium,wrong_time_basis,avg(delivered_at - ordered_at),avg(delivered_at - shipped_at),ordered_at
Rolling Units Sold,medium,wrong_window,sum(units) over the trailing 14 days,sum(units) over the trailing 7 days,units
Error-free Picks,low,missing_filter,count(*) where pick_errors = 0,count(*) where pick_errors = 0 and pick_status = 'completed',pick_errors
Loyalty Members,low,wrong_field,"count(distinct customer_id) where ""loyalty-optin"" is not null",count(distinct customer_id) where loyalty_tier is not null,"""loyalty-optin"""
Stockout Days,low,missing_distinct,count(stock_date) where on_hand_units = 0,count(distinct stock_date) where on_hand_units = 0,stock_date
CSV
cat > out/equivalence.json <<'JSON'
{
  "conflicting_metrics": ["Average Delivery Time", "Checkout Conversion", "Error-free Picks", "Loyalty Members", "Net Sales", "Rolling Units Sold", "Stockout Days"],
  "consistent_metrics": ["Gross Merchandise Value", "Repeat Purchase Rate", "Returns Rate"],
  "severity_by_metric": {"Net Sales": "high", "Checkout Conversion": "high", "Average Delivery Time": "medium", "Rolling Units Sold": "medium", "Stockout Days": "low", "Error-free Picks": "low", "Loyalty Members": "low"},
  "reason_by_metric": {"Gross Merchandise Value": "equivalent", "Net Sales": "revenue_basis", "Checkout Conversion": "wrong_denominator", "Repeat Purchase Rate": "equivalent", "Returns Rate": "equivalent", "Average Delivery Time": "wrong_time_basis", "Rolling Units Sold": "wrong_window", "Stockout Days": "missing_distinct", "Error-free Picks": "missing_filter", "Loyalty Members": "wrong_field"}
}
JSON
