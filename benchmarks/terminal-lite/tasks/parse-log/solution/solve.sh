#!/bin/sh
# Reference solution for parse-log: read every rotation (gzipped or not), keep
# 2026-11-02 requests only, strip query strings, count.
set -eu
for f in /var/log/shop/access.log*; do
  case "$f" in *.gz) gzip -dc "$f" ;; *) cat "$f" ;; esac
done | awk '$4 ~ /^\[02\/Nov\/2026:/ && $9 ~ /^[0-9][0-9][0-9]$/' > "$WORKSPACE/.requests"
awk '{ c[substr($9, 1, 1) "xx"]++ }
     END { for (i = 2; i <= 5; i++) printf "%dxx %d\n", i, c[i "xx"] + 0 }' \
  "$WORKSPACE/.requests" > "$WORKSPACE/status_classes.txt"
awk '$9 ~ /^5/ { p = $7; sub(/\?.*/, "", p); n[p]++ } END { for (p in n) printf "%d %s\n", n[p], p }' \
  "$WORKSPACE/.requests" | LC_ALL=C sort -k1,1nr -k2,2 | head -n 3 > "$WORKSPACE/top_5xx_paths.txt"
rm "$WORKSPACE/.requests"
