#!/bin/sh
# Reference solution for Fix.Config: LF endings, the port typo, a [logging] section
# holding the kept level and an absolute log file path.
set -eu
cat > "$WORKSPACE/app.conf" <<'CONF'
# greeterd for the lobby kiosk. Edited by hand during the 2026-11-03 incident.
[server]
bind = 0.0.0.0
listen_port = 8080
greeting = Welcome to the lobby, please sign in at the desk

[logging]
# raised from info during the incident
level = warn
file = /var/log/greeterd.log
CONF
