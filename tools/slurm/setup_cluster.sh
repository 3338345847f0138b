#!/usr/bin/env bash
# Set up and start a SLURM cluster on this machine, idempotently.
#
#   sudo tools/slurm/setup_cluster.sh              # one node: this host
#   sudo tools/slurm/setup_cluster.sh --nodes 2    # two nodes, each in its own network namespace
#
# As root; ~3 minutes the first time (packages), seconds after. Debian's packages (slurmctld,
# slurmd, slurm-client, munge; SLURM 22.05 on bookworm), a munge key, /etc/slurm/slurm.conf
# rendered from tools/slurm/slurm.conf.in, then munged, slurmctld and the slurmd daemons started.
# It returns once `sinfo` shows every node idle and `srun -N<nodes> true` runs.
#
# One node (the default): the node is this host (its short name), reached on 127.0.0.1.
# --nodes N (2 or more): nodes node1..nodeN, each a slurmd in its own network namespace
# (`ip netns`, named maeslurm-nodeI) with its own UTS name (nodeI) and address SUBNET.(10+I),
# joined by a veth pair to a bridge (maeslurm0) that holds the controller's address SUBNET.1.
# The namespaces have no route beyond that bridge: jobs reach each other and slurmctld, nothing
# else. Inside them `nodeI` and the controller's name resolve through /etc/netns/NS/hosts (bound
# over /etc/hosts in each slurmd's mount namespace), so a job's first node name is a rendezvous address every
# node can reach. Jobs share this machine's file system, users and munge socket.
#
# A second run with the same options installs nothing, rewrites nothing and restarts nothing
# that is already up; other options rewrite slurm.conf and restart the daemons.
#
# Environment: SLURM_PARTITION (default "debug"), SLURM_SETUP_TIMEOUT seconds to wait for the
# nodes (default 120), SLURM_SUBNET (first three octets of the namespaces' /24, default
# 198.18.23: RFC 2544's benchmarking range, never routed). The tests (tests/slurm/) submit to
# this cluster; .ci/run calls this script with --nodes 2.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/slurm.conf.in"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
PARTITION="${SLURM_PARTITION:-debug}"
TIMEOUT="${SLURM_SETUP_TIMEOUT:-120}"
SUBNET="${SLURM_SUBNET:-198.18.23}"
BRIDGE=maeslurm0
PACKAGES=(slurmctld slurmd slurm-client munge iproute2 util-linux)
NODES=1

log() { echo "[slurm-setup] $*" >&2; }
die() { log "error: $*"; exit 1; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --nodes) [ "$#" -ge 2 ] || die "--nodes needs a number"; NODES="$2"; shift 2 ;;
        --nodes=*) NODES="${1#--nodes=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (expected --nodes N)" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, starts daemons and makes network namespaces)"
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"
case "$PARTITION" in *[!A-Za-z0-9_.-]*|"") die "SLURM_PARTITION='$PARTITION': use letters, digits, '_', '.', '-'";; esac
case "$NODES" in ''|*[!0-9]*) die "--nodes '$NODES': expected a whole number from 1 to 32";; esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 32 ] || die "--nodes $NODES: expected a whole number from 1 to 32"
[[ "$SUBNET" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "SLURM_SUBNET='$SUBNET': expected three octets, like 198.18.23"

CONTROLLER="$(hostname -s)"
node_name() { if [ "$NODES" -eq 1 ]; then echo "$CONTROLLER"; else echo "node$1"; fi; }
namespace() { echo "maeslurm-node$1"; }
node_addr() { if [ "$NODES" -eq 1 ]; then echo 127.0.0.1; else echo "$SUBNET.$((10 + $1))"; fi; }
controller_addr() { if [ "$NODES" -eq 1 ]; then echo 127.0.0.1; else echo "$SUBNET.1"; fi; }

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

# The bridge with the controller's address, and per node a namespace joined to it by a veth pair.
setup_network() {
    local i ns addr host_end node_end
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        log "creating bridge $BRIDGE"
        ip link add "$BRIDGE" type bridge || die "cannot create a bridge here (--nodes $NODES needs CAP_NET_ADMIN and the bridge and veth kernel modules; one node needs neither)"
    fi
    ip -4 addr show dev "$BRIDGE" | grep -q "inet $SUBNET.1/24" || ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for i in $(seq "$NODES"); do
        ns="$(namespace "$i")" addr="$(node_addr "$i")" host_end="maesl${i}h" node_end="maesl${i}n"
        if ! ip netns list | grep -q "^$ns\( \|$\)"; then
            log "creating network namespace $ns ($addr)"
            ip netns add "$ns" || die "cannot create network namespace $ns (--nodes $NODES needs CAP_SYS_ADMIN; one node does not)"
        fi
        ip link show "$host_end" >/dev/null 2>&1 || ip link add "$host_end" type veth peer name "$node_end" netns "$ns"
        ip link set "$host_end" master "$BRIDGE" up
        ip -n "$ns" link set lo up
        ip -n "$ns" -4 addr show dev "$node_end" | grep -q "inet $addr/24" || ip -n "$ns" addr add "$addr/24" dev "$node_end"
        ip -n "$ns" link set "$node_end" up
        install -d -m 0755 "/etc/netns/$ns"
        write_if_changed "/etc/netns/$ns/hosts" "$(hosts_file "$i")" >/dev/null
    done
}

# /etc/hosts as the node in namespace $1 sees it: itself, its peers and the controller.
hosts_file() {
    local i
    printf '127.0.0.1 localhost\n%s %s\n' "$(controller_addr)" "$CONTROLLER"
    for i in $(seq "$NODES"); do printf '%s %s\n' "$(node_addr "$i")" "$(node_name "$i")"; done
}

render_conf() {
    local cpus memory_mb nodes i
    cpus="$(nproc --all)"
    # 90% of MemTotal: slurmd drains a node that reports less memory than configured. Every node
    # sees this machine's CPUs and memory; memory is not a consumable resource here (CR_CPU).
    memory_mb="$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)"
    sed -e "s/@CONTROLLER@/$CONTROLLER/g" -e "s/@CONTROLLER_ADDR@/$(controller_addr)/g" "$TEMPLATE"
    nodes=""
    for i in $(seq "$NODES"); do
        echo "NodeName=$(node_name "$i") NodeAddr=$(node_addr "$i") CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN"
        nodes="${nodes:+$nodes,}$(node_name "$i")"
    done
    echo "PartitionName=$PARTITION Nodes=$nodes Default=YES MaxTime=INFINITE State=UP"
}

# Writes $2 to $1 unless it already holds exactly that; prints "changed" when it wrote.
write_if_changed() {
    local target="$1" rendered
    rendered="$(mktemp)"
    printf '%s\n' "$2" >"$rendered"
    if [ -f "$target" ] && cmp -s "$rendered" "$target"; then
        rm -f "$rendered"
        return 0
    fi
    install -m 0644 "$rendered" "$target"
    rm -f "$rendered"
    log "wrote $target"
    echo changed
}

write_conf() {
    install -d -m 0755 "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
    write_if_changed "$CONF" "$(render_conf)"
}

start_daemons() {
    local changed="$1" i name pidfile
    if [ "$changed" = changed ]; then
        for pidfile in /run/slurm/slurmd*.pid; do [ -e "$pidfile" ] && stop slurmd "$pidfile"; done
        stop slurmctld /run/slurm/slurmctld.pid
    fi
    if ! running slurmctld /run/slurm/slurmctld.pid; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    for i in $(seq "$NODES"); do
        name="$(node_name "$i")" pidfile="/run/slurm/slurmd-$(node_name "$i").pid"
        install -d -m 0755 "/var/spool/slurmd/$name"
        running slurmd "$pidfile" && continue
        if [ "$NODES" -eq 1 ]; then
            log "starting slurmd"
            /usr/sbin/slurmd
        else
            log "starting slurmd for $name in network namespace $(namespace "$i")"
            # nsenter, not `ip netns exec`, which remounts /sys without the cgroup tree slurmd
            # reads; its own UTS namespace (`hostname` in a job names its node) and mount
            # namespace (its /etc/hosts is /etc/netns/NS/hosts; everything else is shared)
            nsenter --net="/run/netns/$(namespace "$i")" unshare --uts --mount --propagation private -- \
                sh -c 'mount --bind "$2" /etc/hosts && hostname "$1" && exec /usr/sbin/slurmd -N "$1"' \
                slurmd-launch "$name" "/etc/netns/$(namespace "$i")/hosts"
        fi
    done
}

wait_until_usable() {
    local i name state deadline all_idle
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        all_idle=yes
        for i in $(seq "$NODES"); do
            name="$(node_name "$i")"
            state="$(sinfo -h -n "$name" -o %t 2>/dev/null || true)"
            case "$state" in
                idle|mix|alloc) ;;
                down*|drain*|drng*)
                    all_idle=no
                    scontrol update NodeName="$name" State=RESUME >/dev/null 2>&1 || true ;;
                *) all_idle=no ;;
            esac
            [ "$all_idle" = yes ] || break
        done
        [ "$all_idle" = yes ] && break
        [ "$SECONDS" -lt "$deadline" ] || die "node $name is '${state:-unknown}' after ${TIMEOUT}s (see /var/log/slurm/)"
        sleep 1
    done
    timeout 60 srun -N"$NODES" -t 1 true || die "srun -N$NODES true failed (see /var/log/slurm/slurmd-*.log)"
    log "cluster up: $NODES node(s) $(sinfo -h -o '%N %t' | tr '\n' ' ')in partition $PARTITION"
}

install_packages
setup_munge
[ "$NODES" -eq 1 ] || setup_network
start_daemons "$(write_conf)"
wait_until_usable
