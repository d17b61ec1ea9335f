#!/usr/bin/env bash
# Starts what the test suite talks to when it is not already running: a Redis on 127.0.0.1:6379, a Redis
# Sentinel on 127.0.0.1:26379 monitoring it as "bedrock-budget", and the redis-server binary for the cluster
# fixture. Installs Debian packages when they are missing.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# prometheus + promtool for tests/metrics: the tests start their own prometheus on a loopback port, so the
# Debian service is kept from starting (policy-rc.d exit 101 = "action forbidden") during the install.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    echo "installing Debian package: prometheus"
    export DEBIAN_FRONTEND=noninteractive
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ "$own_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting redis-server on 127.0.0.1:6379"
    mkdir -p /tmp/bedrock-budget-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/bedrock-budget-redis --logfile /tmp/bedrock-budget-redis/redis.log
    for _ in $(seq 1 50); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
fi

# A Redis Sentinel on 127.0.0.1:26379 monitoring the Redis above as "bedrock-budget", so the store suites run
# over redis+sentinel:// too. Sentinel rewrites its configuration file, so it gets a copy of its own.
SENTINEL_PORT=26379
SENTINEL_SERVICE=bedrock-budget
sentinel_master() {
    redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$SENTINEL_SERVICE" 2>/dev/null |
        tr '\n' ' '
}
if ! redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" ping >/dev/null 2>&1; then
    echo "starting redis-server --sentinel on 127.0.0.1:$SENTINEL_PORT"
    mkdir -p /tmp/bedrock-budget-redis
    cat >/tmp/bedrock-budget-redis/sentinel.conf <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
daemonize yes
dir /tmp/bedrock-budget-redis
logfile /tmp/bedrock-budget-redis/sentinel.log
pidfile /tmp/bedrock-budget-redis/sentinel.pid
sentinel monitor $SENTINEL_SERVICE 127.0.0.1 6379 1
sentinel down-after-milliseconds $SENTINEL_SERVICE 5000
CONF
    redis-server /tmp/bedrock-budget-redis/sentinel.conf --sentinel
fi
if [ -z "$(sentinel_master)" ]; then
    # A Sentinel was running already but did not know the service: add it.
    redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" sentinel monitor "$SENTINEL_SERVICE" 127.0.0.1 6379 1 >/dev/null
fi
for _ in $(seq 1 50); do
    [ "$(sentinel_master)" = "127.0.0.1 6379 " ] && break
    sleep 0.1
done
if [ "$(sentinel_master)" != "127.0.0.1 6379 " ]; then
    echo "the Sentinel on 127.0.0.1:$SENTINEL_PORT does not give 127.0.0.1:6379 for $SENTINEL_SERVICE" >&2
    exit 1
fi
