#!/usr/bin/env bash
# apt-get "$@", waiting for the package manager's locks instead of failing while another
# install (unattended-upgrades, a second set-up) holds them. dpkg's lock is waited for
# by apt itself (DPkg::Lock::Timeout); apt-get update's list lock, which that option
# does not cover (apt 2.6), by retrying while the only error is a lock held elsewhere.
set -uo pipefail

timeout=${A4C_APT_LOCK_TIMEOUT:-600}
deadline=$((SECONDS + timeout))
said=""
while true; do
    err=$(apt-get -o DPkg::Lock::Timeout="$timeout" "$@" 2>&1 >/dev/null) && exit 0
    status=$?
    if ! grep -q "Could not get lock" <<<"$err" || [ "$SECONDS" -ge "$deadline" ]; then
        printf '%s\n' "$err" >&2
        exit "$status"
    fi
    if [ -z "$said" ]; then
        echo "waiting for the package manager's lock (another install is running)..." >&2
        said=1
    fi
    sleep 2
done
