#!/usr/bin/env bash
# stop-zabbix.sh [--purge] - stop what start-zabbix.sh started (php -S, zabbix_server,
# the private PostgreSQL cluster). --purge also deletes the database cluster, TLS
# material, logs and generated config, so the next start-zabbix.sh starts from scratch
# (installed Debian packages are kept). Idempotent: safe to run when nothing is running.
# Adapted from the plogd shared Zabbix testbed (zabbix-testbed/stop-zabbix.sh); the project
# uses only this copy, the counterpart of tests/zabbix/start-zabbix.sh.
set -uo pipefail
ZBX_BASE=${ZBX_BASE:-${TMPDIR:-/tmp}/zabbix-testbed}
PGBIN=/usr/lib/postgresql/15/bin

wait_gone() {  # pid, seconds
  for _ in $(seq $(( $2 * 10 ))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# php -S (started with setsid: its pid is also its process-group id; workers share the group)
if pid=$(cat "$ZBX_BASE/run/php.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  kill -- "-$pid" 2>/dev/null || kill "$pid"
  wait_gone "$pid" 10 || kill -9 -- "-$pid" 2>/dev/null
  echo "php -S stopped"
fi
rm -f "$ZBX_BASE/run/php.pid"

# zabbix_proxy of start-proxy.sh, if one runs
if pid=$(cat "$ZBX_BASE/run/zabbix/zabbix_proxy.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  wait_gone "$pid" 30 || kill -9 "$pid"
  echo "zabbix_proxy stopped"
fi

# zabbix_server: SIGTERM to the main process; it stops its children and removes the pid file
if pid=$(cat "$ZBX_BASE/run/zabbix/zabbix_server.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  if ! wait_gone "$pid" 60; then
    echo "zabbix_server did not stop in 60 s, killing" >&2
    kill -9 "$pid"; pkill -9 -P "$pid" 2>/dev/null
  fi
  echo "zabbix_server stopped"
fi

# PostgreSQL private cluster
if [ -f "$ZBX_BASE/pg/data/PG_VERSION" ] &&
   runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ZBX_BASE/pg/data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ZBX_BASE/pg/data" -m fast -w stop >/dev/null && echo "PostgreSQL stopped"
fi

if [ "${1:-}" = "--purge" ]; then
  rm -rf "${ZBX_BASE:?}/pg" "${ZBX_BASE:?}/run" "${ZBX_BASE:?}/log" "${ZBX_BASE:?}/etc" "${ZBX_BASE:?}/tls" "${ZBX_BASE:?}/proxy" "${ZBX_BASE:?}/proxy-pkg" "${ZBX_BASE:?}/py313" "${ZBX_BASE:?}/zabbix.env" "${ZBX_BASE:?}/.start.lock"
  rm -f /etc/zabbix/zabbix.conf.php
  echo "purged state under $ZBX_BASE"
fi
exit 0
