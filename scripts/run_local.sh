#!/usr/bin/env bash
# Start the web app and one background worker on the embedded defaults; Ctrl-C stops both.
set -euo pipefail
HOST="${1:-127.0.0.1}"
PORT="${2:-8000}"
PY=.venv/bin/python
mkdir -p var/log
# The worker runs below the web server's CPU priority, with one torch thread unless told otherwise:
# on a machine without a GPU a registration must not slow the readers (docs/deployment.md).
MRITRUS_TORCH_THREADS="${MRITRUS_TORCH_THREADS:-1}" nice -n 10 \
  $PY manage.py db_worker --queue-name '*' --interval 1 >var/log/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM
echo
echo "mritrus is running at http://$HOST:$PORT/  (worker log: var/log/worker.log)"
cat var/demo_logins.txt 2>/dev/null || true
echo
exec .venv/bin/gunicorn mritrus_site.wsgi:application --bind "$HOST:$PORT" --workers 2 --threads 4 --timeout 300 --access-logfile - 
