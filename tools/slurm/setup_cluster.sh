#!/usr/bin/env bash
# Set up and start a one-node SLURM cluster on this machine, idempotently.
#
#   sudo tools/slurm/setup_cluster.sh        # as root; ~3 minutes the first time, seconds after
#
# Debian's packages (slurmctld, slurmd, slurm-client, munge; SLURM 22.05 on bookworm), a munge
# key, /etc/slurm/slurm.conf rendered from tools/slurm/slurm.conf.in with this machine's host
# name, CPU count and memory (one node, one default partition), then munged, slurmctld and slurmd
# started as daemons. It returns once `sinfo` shows the node idle and `srun -N1 true` runs.
# A second run installs nothing, rewrites nothing and restarts nothing that is already up.
#
# Environment: SLURM_PARTITION (default "debug"), SLURM_SETUP_TIMEOUT seconds to wait for the
# node (default 120). The tests (tests/slurm/) submit to this cluster; .ci/run calls this script.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/slurm.conf.in"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
PARTITION="${SLURM_PARTITION:-debug}"
TIMEOUT="${SLURM_SETUP_TIMEOUT:-120}"
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { echo "[slurm-setup] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"
case "$PARTITION" in *[!A-Za-z0-9_.-]*|"") die "SLURM_PARTITION='$PARTITION': use letters, digits, '_', '.', '-'";; esac

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]} from Debian's mirror"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

# A daemon of ours is up when its pid file names a live process with the daemon's name.
running() {
    local name="$1" pidfile="$2" pid
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]
}

stop() {
    local name="$1" pidfile="$2"
    running "$name" "$pidfile" || return 0
    log "stopping $name (pid $(cat "$pidfile")) to apply the new configuration"
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do running "$name" "$pidfile" || return 0; sleep 0.2; done
    die "$name (pid $(cat "$pidfile")) did not stop"
}

setup_munge() {
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating a munge key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "starting munged"
        runuser -u munge -- /usr/sbin/munged
        for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.2; done
        die "munged does not answer (see /var/log/munge/munged.log)"
    fi
}

render_conf() {
    local node cpus memory_mb
    node="$(hostname -s)"
    cpus="$(nproc --all)"
    # 90% of MemTotal: slurmd drains a node that reports less memory than configured.
    memory_mb="$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)"
    sed -e "s/@NODE@/$node/g" -e "s/@CPUS@/$cpus/g" -e "s/@MEMORY_MB@/$memory_mb/g" \
        -e "s/@PARTITION@/$PARTITION/g" "$TEMPLATE"
}

# Prints "changed" when slurm.conf was (re)written.
write_conf() {
    local rendered
    rendered="$(mktemp)"
    render_conf >"$rendered"
    install -d -m 0755 "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
    if [ -f "$CONF" ] && cmp -s "$rendered" "$CONF"; then
        rm -f "$rendered"
        return 0
    fi
    install -m 0644 "$rendered" "$CONF"
    rm -f "$rendered"
    log "wrote $CONF"
    echo changed
}

start_daemons() {
    local changed="$1"
    if [ "$changed" = changed ]; then
        stop slurmd /run/slurm/slurmd.pid
        stop slurmctld /run/slurm/slurmctld.pid
    fi
    if ! running slurmctld /run/slurm/slurmctld.pid; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    if ! running slurmd /run/slurm/slurmd.pid; then
        log "starting slurmd"
        /usr/sbin/slurmd
    fi
}

wait_until_usable() {
    local node state deadline
    node="$(hostname -s)"
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        state="$(sinfo -h -n "$node" -o %t 2>/dev/null || true)"
        case "$state" in
            idle|mix|alloc) break ;;
            down*|drain*|drng*)
                scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        [ "$SECONDS" -lt "$deadline" ] || die "node $node is '${state:-unknown}' after ${TIMEOUT}s (see /var/log/slurm/)"
        sleep 1
    done
    timeout 60 srun -N1 -t 1 true || die "srun -N1 true failed (see /var/log/slurm/slurmd.log)"
    log "cluster up: node $node ($state), partition $PARTITION"
}

install_packages
setup_munge
start_daemons "$(write_conf)"
wait_until_usable
