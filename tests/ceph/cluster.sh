#!/usr/bin/env bash
# A one-node Ceph cluster on loopback for the tests: one monitor, one
# memstore OSD (data in memory, nothing on disk but logs), radosgw, no auth,
# pool size 1, and an S3 user. Ceph's conditional writes are atomic, so the
# race tests run against it.
#
#   cluster.sh up DIR MON_PORT RGW_PORT ACCESS SECRET   # start (or reuse) it
#   cluster.sh down DIR                                 # stop it
#
# `up` prints the radosgw endpoint. Callers serialize with `flock -o DIR.lock`
# (-o: the daemons must not inherit the lock).
set -euo pipefail
cmd=$1 D=$2

down() {
    for pid in "$D"/run/*.pid; do
        [ -e "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    for _ in $(seq 50); do
        alive=0
        for pid in "$D"/run/*.pid; do
            [ -e "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
}

if [ "$cmd" = down ]; then
    [ -d "$D" ] && down
    exit 0
fi

MON_PORT=$3 RGW_PORT=$4 ACCESS=$5 SECRET=$6
# Reuse a cluster that still answers.
if [ -f "$D/endpoint" ] && curl -fsS -m 2 -o /dev/null "$(cat "$D/endpoint")" 2>/dev/null; then
    cat "$D/endpoint"
    exit 0
fi
[ -d "$D" ] && down
rm -rf "$D"
mkdir -p "$D"/{run,log,mon,osd}
# Ceph logs to its own files: show them when a step fails.
trap 'echo "cluster.sh: line $LINENO failed; logs:" >&2; tail -n 20 "$D"/log/* >&2' ERR
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc
ms bind msgr2 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 4294967296
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
run dir = $D/run
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon data = $D/mon/\$id
osd data = $D/osd/\$id
keyring = $D/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw enable usage log = false
EOF
C=(-c "$D/ceph.conf")
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --add a "v1:127.0.0.1:$MON_PORT" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
# Daemons must not hold the caller's pipes open.
ceph-mon "${C[@]}" -i a </dev/null >>"$D/log/daemons.log" 2>&1
# The monitor takes a moment to answer.
for _ in $(seq 100); do
    OSD=$(ceph "${C[@]}" --connect-timeout 5 osd create 2>/dev/null) && break
    sleep 0.2
done
mkdir -p "$D/osd/$OSD"
ceph-osd "${C[@]}" -i "$OSD" --mkfs >"$D/log/mkfs.log" 2>&1
ceph-osd "${C[@]}" -i "$OSD" </dev/null >>"$D/log/daemons.log" 2>&1
radosgw "${C[@]}" -n client.rgw </dev/null >>"$D/log/daemons.log" 2>&1
endpoint="http://127.0.0.1:$RGW_PORT"
for _ in $(seq 300); do
    curl -fsS -m 2 -o /dev/null "$endpoint" 2>/dev/null && break
    sleep 0.1
done
radosgw-admin "${C[@]}" user create --uid verbatim --display-name verbatim \
    --access-key "$ACCESS" --secret-key "$SECRET" >/dev/null
echo "$endpoint" > "$D/endpoint"
echo "$endpoint"
