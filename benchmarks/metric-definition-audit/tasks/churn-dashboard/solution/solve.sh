#!/bin/sh
# Reference solution: the audit a careful analyst writes for churn-dashboard.
# Every field is quoted, so a grader that compares bytes instead of parsing CSV fails.
set -eu
cd "${WORKSPACE:?WORKSPACE is not set}"
mkdir -p out
cat > out/audit.csv <<'CSV'
"metric_name","severity","reason_class","dashboard_formula","approved_formula","primary_field"
"Monthly Recurring Revenue","high","revenue_basis","sum(invoice_amount_gross) where invoice_status = 'paid'","sum(coalesce(invoice_amount_net, 0)) where invoice_status = 'paid'","invoice_amount_gross"
"Trial Conversion Rate","high","wrong_denominator","count(distinct account_id) where converted_at is not null / count(distinct account_id)","count(distinct account_id) where converted_at is not null / count(distinct account_id) where trial_started_at is not null","account_id"
"Average Time to First Response","medium","wrong_time_basis","avg(first_response_at - ticket_assigned_at)","avg(first_response_at - ticket_created_at)","ticket_assigned_at"
"Weekly Active Accounts","medium","wrong_window","count(distinct account_id) from sessions in the last 30 days","count(distinct account_id) from sessions in the last 7 days","account_id"
"Seats in Use","low","missing_distinct","count(user_id) where seat_status = 'active'","count(distinct user_id) where seat_status = 'active'","user_id"
"Support Tickets Opened","low","missing_filter","count(*)","count(*) where ticket_type = 'customer'","ticket_id"
"Marketing Reach","low","wrong_field","count(distinct contact_id) where newsletter_opt_in = true","count(distinct contact_id) where email_opt_in = true","newsletter_opt_in"
CSV
cat > out/equivalence.json <<'JSON'
{"conflicting_metrics":["Average Time to First Response","Marketing Reach","Monthly Recurring Revenue","Seats in Use","Support Tickets Opened","Trial Conversion Rate","Weekly Active Accounts"],
 "consistent_metrics":["Average Seats per Account","Churned Accounts","Net Revenue Retention"],
 "severity_by_metric":{"Monthly Recurring Revenue":"high","Trial Conversion Rate":"high","Average Time to First Response":"medium","Weekly Active Accounts":"medium","Seats in Use":"low","Support Tickets Opened":"low","Marketing Reach":"low"},
 "reason_by_metric":{"Monthly Recurring Revenue":"revenue_basis","Trial Conversion Rate":"wrong_denominator","Net Revenue Retention":"equivalent","Churned Accounts":"equivalent","Average Time to First Response":"wrong_time_basis","Weekly Active Accounts":"wrong_window","Average Seats per Account":"equivalent","Seats in Use":"missing_distinct","Support Tickets Opened":"missing_filter","Marketing Reach":"wrong_field"}}
JSON
