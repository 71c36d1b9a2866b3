#!/usr/bin/env bash
# make demo: the embedded dev server plus a mount at ./mnt, in the
# foreground. Ctrl-C unmounts cleanly and stops the server.
set -eu
bin=${1:-bin/infisicalfs}
addr=${DEMO_ADDR:-127.0.0.1:8222}
mnt=${DEMO_MOUNT:-./mnt}
mkdir -p "$mnt"
"$bin" unmount "$mnt" 2>/dev/null || true   # a stale mount from an earlier run

# The server runs in its own session, so that Ctrl-C reaches the mount
# alone: it unmounts and revokes its token while the server still answers
# (a server stopped at the same moment made the revoke time out, 5 s), and
# the trap stops the server once the mount has exited.
setsid=
command -v setsid >/dev/null 2>&1 && setsid=setsid
$setsid "$bin" dev-server --addr "$addr" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
trap ':' INT TERM # the mount handles them; the script then ends and the EXIT trap runs
# Wait until the server answers.
i=0
until (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; do
  i=$((i+1)); [ $i -gt 100 ] && { echo "demo: dev-server did not start" >&2; exit 1; }
  sleep 0.1
done

export INFISICAL_URL="http://$addr"
export INFISICAL_CLIENT_ID=sample-client-id
export INFISICAL_CLIENT_SECRET=sample-client-secret
export XDG_STATE_HOME="${XDG_STATE_HOME:-$PWD/.demo-state}"
cat <<MSG
infisicalfs demo: the dev server runs at $INFISICAL_URL with sample data.
Mounting it at $mnt. In another shell try:
  ls $mnt; cat $mnt/.status
  cat $mnt/webshop/dev/DATABASE_URL
  echo new-value > $mnt/webshop/dev/FEATURE_FLAG && cat $mnt/webshop/dev/FEATURE_FLAG
  cd $mnt/webshop/dev && (set -a; . ./.env; env | grep DATABASE)
Ctrl-C unmounts.
MSG
"$bin" mount --refresh-interval 10s "$mnt"
