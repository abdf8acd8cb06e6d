# shellcheck shell=bash disable=SC2034 # settings here are used by the scripts that source this file
# Shared settings and helpers for the flowpath lab scripts (lab/up, lab/flow, lab/exporter, lab/down).
# Sourced, never executed. Everything the lab creates is recorded in $LAB_STATE so that lab/down
# removes exactly that and nothing else.
#
# Every setting can be overridden from the environment:
#   LAB_DIR        run directory (state file, OVS run dir, flow files)    default /tmp/flowpath-lab
#   LAB_NS_A/B     node namespaces (A = sender, B = receiver)              default fp-a / fp-b
#   A_IP/B_IP      node addresses (exist only inside the namespaces)       default 1.1.1.3 / 1.1.1.2
#   LAB_PREFIX     prefix length of the node addresses                     default 24
#   LAB_WIRE_A/B   the veth pair used as the physical link (ovs topology)  default wire-a / wire-b
#   LAB_BR_A/B     the OVS bridges                                         default br-a / br-b
#   LAB_INT_A/B    the OVS internal ports moved into the namespaces        default a-int / b-int
#   LAB_IPERF_PORT iperf3 port                                             default 5201

LAB_DIR=${LAB_DIR:-/tmp/flowpath-lab}
LAB_NS_A=${LAB_NS_A:-fp-a}
LAB_NS_B=${LAB_NS_B:-fp-b}
A_IP=${A_IP:-1.1.1.3}
B_IP=${B_IP:-1.1.1.2}
LAB_PREFIX=${LAB_PREFIX:-24}
LAB_WIRE_A=${LAB_WIRE_A:-wire-a}
LAB_WIRE_B=${LAB_WIRE_B:-wire-b}
LAB_BR_A=${LAB_BR_A:-br-a}
LAB_BR_B=${LAB_BR_B:-br-b}
LAB_INT_A=${LAB_INT_A:-a-int}
LAB_INT_B=${LAB_INT_B:-b-int}
LAB_IPERF_PORT=${LAB_IPERF_PORT:-5201}
# Device name inside each node namespace for the veth topology.
LAB_VETH_DEV=eth0
# Name of the tap the userspace datapath itself creates in the root netns.
LAB_OVS_DP_TAP=ovs-netdev

LAB_STATE=$LAB_DIR/state
LAB_ENV_FILE=$LAB_DIR/lab.env
OVS_DIR=$LAB_DIR/ovs
OVS_DB_SOCK=$OVS_DIR/db.sock
OVS_UNIXCTL=$OVS_DIR/ovs-vswitchd.ctl
FLOW_DIR=$LAB_DIR/flow

# OVS tools and daemons look for their run/log/db dirs here; keep them inside the private run dir so the
# lab never touches /var/run/openvswitch (bridge mgmt sockets, etc.).
export OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR

LAB_PROG=${LAB_PROG:-lab}

lab_log() { printf '%s: %s\n' "$LAB_PROG" "$*" >&2; }
lab_die() { printf '%s: error: %s\n' "$LAB_PROG" "$*" >&2; exit 1; }

lab_require_root() {
  [[ $(id -u) -eq 0 ]] || lab_die "must run as root (network namespaces, veth, tc, OVS)"
}

lab_require_cmds() {
  local c missing=()
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  ((${#missing[@]} == 0)) || lab_die "missing commands: ${missing[*]} (apt-get install openvswitch-switch iperf3 ethtool iputils-ping iproute2)"
}

# Monotonic-ish wall clock in milliseconds.
lab_now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

lab_elapsed() { # START_MS -> "1.234"
  local d=$(($(lab_now_ms) - $1))
  printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

# ---------------------------------------------------------------------------------------------------
# State file: one record per line, processed in reverse order by lab_teardown.
#   topo ovs|veth            rate RATE                dir PATH
#   pidfile PATH COMM        netns NAME               link NAME (root netns)
#   ovsbr NAME               file PATH (a log file inside $LAB_DIR)

lab_state_add() { printf '%s\n' "$*" >>"$LAB_STATE"; }

lab_is_up() { [[ -s $LAB_STATE ]]; }

lab_state_get() { # KEY -> first value recorded for KEY (empty if none)
  [[ -f $LAB_STATE ]] || return 0
  awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$LAB_STATE"
}

lab_topo() { lab_state_get topo; }

lab_require_up() {
  lab_is_up || lab_die "the lab is not up (no $LAB_STATE); run lab/up first"
}

# ---------------------------------------------------------------------------------------------------
# Processes

# PID is alive and not a zombie (PID 1 here reaps re-parented zombies only every ~2 s).
lab_pid_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# PID is alive and its comm is COMM (guards against a recycled pid).
lab_pid_is() {
  local pid=$1 comm=$2 c
  lab_pid_alive "$pid" || return 1
  c=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $c == "${comm:0:15}" ]]
}

# Stop one process by pid: TERM, wait up to TIMEOUT seconds (default 3), then KILL.
lab_stop_pid() {
  local pid=$1 timeout=${2:-3} i
  lab_pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < timeout * 20; i++)); do
    lab_pid_alive "$pid" || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    lab_pid_alive "$pid" || return 0
    sleep 0.05
  done
  lab_log "warning: pid $pid did not exit"
}

# Stop the process whose pid is in PIDFILE if its comm is COMM; remove the pidfile.
lab_stop_pidfile() {
  local pidfile=$1 comm=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(tr -dc '0-9' <"$pidfile")
  if [[ -n $pid ]] && lab_pid_is "$pid" "$comm"; then
    lab_stop_pid "$pid"
  fi
  rm -f "$pidfile"
}

# Wait until CMD... succeeds, polling every 50 ms, for at most TIMEOUT seconds.
lab_wait_for() {
  local timeout=$1 i
  shift
  for ((i = 0; i < timeout * 20; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------------------------------------------
# Namespaces, links

lab_netns_exists() { [[ -e /run/netns/$1 ]]; }
lab_link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# Run a command in namespace NS ("-" or "" = root netns).
lab_in_ns() {
  local ns=$1
  shift
  if [[ -z $ns || $ns == - ]]; then "$@"; else ip netns exec "$ns" "$@"; fi
}

lab_ns_for_node() { # a|b|NSNAME -> namespace name
  case $1 in
    a | A) echo "$LAB_NS_A" ;;
    b | B) echo "$LAB_NS_B" ;;
    *) echo "$1" ;;
  esac
}

# The "wire shaper": where the link rate (lab/up --rate) and the bneck/loss tbf go.
#
# ovs:  tbf as root qdisc of wire-a in the root netns, i.e. on the sender side of the physical link.
#       The sender's tap (a-int) orphans the skb, so a queue there is a *network* queue for TCP.
# veth: a tbf on the sender's own eth0 would be a *local* qdisc: the skb still belongs to the sending
#       socket, TCP small queues (TSQ) throttle the sender and the flow never looks cwnd-limited
#       (measured here: unacked 62-101 < cwnd 124-152, 0 retransmits). The same happens
#       with an ifb at B's ingress, because veth hands the skb over with the socket still attached.
#       What works: GRO on B's eth0 puts veth into NAPI mode, where the skb is orphaned on receive
#       (skb_prepare_for_gro); that path is taken only for non-TSO skbs, so TSO is turned off on A's
#       eth0 (A still does GSO). The tbf then sits on an ifb in node B that receives B's eth0 ingress
#       (u32 match-all + mirred redirect): the far end of the link, with a queue TCP cannot see.
#       Measured: unacked = cwnd, retransmits, tbf drops — the same signature as on the ovs topology.
LAB_VETH_IFB=${LAB_VETH_IFB:-ifb-wire}

lab_wire_desc() {
  case $(lab_topo) in
    ovs) echo "$LAB_WIRE_A egress (root netns)" ;;
    veth) echo "$LAB_VETH_IFB in netns $LAB_NS_B (= ingress of $LAB_VETH_DEV in $LAB_NS_B; TSO off on A, GRO on on B)" ;;
    *) lab_die "unknown topology in $LAB_STATE" ;;
  esac
}

# Install "tbf ARGS..." as the wire's shaper (replacing any previous one).
lab_wire_shape() {
  case $(lab_topo) in
    ovs) tc qdisc replace dev "$LAB_WIRE_A" root tbf "$@" ;;
    veth)
      local a=$LAB_NS_A b=$LAB_NS_B dev=$LAB_VETH_DEV ifb=$LAB_VETH_IFB
      ip netns exec "$a" ethtool -K "$dev" tso off
      ip netns exec "$b" ethtool -K "$dev" gro on
      if ! ip -n "$b" link show dev "$ifb" >/dev/null 2>&1; then
        ip -n "$b" link add "$ifb" type ifb
        ip -n "$b" link set dev "$ifb" up
      fi
      ip netns exec "$b" tc qdisc replace dev "$ifb" root tbf "$@"
      if ! ip netns exec "$b" tc qdisc show dev "$dev" ingress | grep -q ingress; then
        ip netns exec "$b" tc qdisc add dev "$dev" handle ffff: ingress
        ip netns exec "$b" tc filter add dev "$dev" parent ffff: protocol all prio 1 u32 match u32 0 0 \
          action mirred egress redirect dev "$ifb"
      fi
      ;;
    *) lab_die "unknown topology in $LAB_STATE" ;;
  esac
}

# Remove the wire's shaper and return the devices to their lab defaults. Tolerant of partial state.
lab_wire_unshape() {
  case $(lab_topo) in
    ovs) tc qdisc del dev "$LAB_WIRE_A" root 2>/dev/null || true ;;
    veth)
      local a=$LAB_NS_A b=$LAB_NS_B dev=$LAB_VETH_DEV
      if lab_netns_exists "$b"; then
        ip netns exec "$b" tc qdisc del dev "$dev" ingress 2>/dev/null || true
        ip -n "$b" link del dev "$LAB_VETH_IFB" 2>/dev/null || true
        ip netns exec "$b" ethtool -K "$dev" gro off 2>/dev/null || true
      fi
      if lab_netns_exists "$a"; then ip netns exec "$a" ethtool -K "$dev" tso on 2>/dev/null || true; fi
      ;;
  esac
}

lab_tbf_rate_args() { # RATE -> tbf arguments used for the lab link rate (same shape as bneck)
  echo "rate $1 burst 32kb latency 5ms"
}

# Put back the lab's own link rate (lab/up --rate), or no shaper at all.
lab_wire_restore() {
  local rate
  rate=$(lab_state_get rate)
  if [[ -n $rate ]]; then
    # shellcheck disable=SC2046 # word splitting of the tbf arguments is intended
    lab_wire_shape $(lab_tbf_rate_args "$rate")
  else
    lab_wire_unshape
  fi
}

# ---------------------------------------------------------------------------------------------------
# OVS

lab_vsctl() { ovs-vsctl --db="unix:$OVS_DB_SOCK" --timeout=10 "$@"; }
lab_appctl() { ovs-appctl -t "$OVS_UNIXCTL" "$@"; }

# ---------------------------------------------------------------------------------------------------
# Flow runner (lab/flow) state lives in $FLOW_DIR:
#   runner.pid   the lab/flow process that owns the flow (its EXIT trap restores)
#   client.pid   server.pid   iperf3 processes
#   restore      one line per change, undone in reverse order by lab_flow_restore:
#                  sysctl NS KEY VALUE...     wire

lab_flow_restore() {
  local file=$FLOW_DIR/restore line i kind ns rest
  [[ -f $file ]] || return 0
  local -a lines=()
  mapfile -t lines <"$file"
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    line=${lines[i]}
    read -r kind ns rest <<<"$line"
    case $kind in
      sysctl)
        local key=${rest%% *} value=${rest#* }
        if lab_netns_exists "$ns"; then
          ip netns exec "$ns" sysctl -q -w "$key=$value" || lab_log "warning: could not restore $key in $ns"
        fi
        ;;
      wire) lab_wire_restore || lab_log "warning: could not restore the wire shaper" ;;
      *) lab_log "warning: unknown restore record: $line" ;;
    esac
  done
  rm -f "$file"
}

# Stop a running flow (if any) and undo what it changed.
lab_flow_stop() {
  local pid
  if [[ -f $FLOW_DIR/runner.pid ]]; then
    pid=$(tr -dc '0-9' <"$FLOW_DIR/runner.pid")
    # The runner's EXIT trap kills iperf3 and restores; give it time to do so.
    if [[ -n $pid && $pid != "$$" ]] && lab_pid_alive "$pid"; then
      lab_stop_pid "$pid" 8
    fi
  fi
  lab_stop_pidfile "$FLOW_DIR/client.pid" iperf3
  lab_stop_pidfile "$FLOW_DIR/server.pid" iperf3
  lab_flow_restore
  rm -f "$FLOW_DIR/runner.pid"
}

# ---------------------------------------------------------------------------------------------------
# Teardown: undo every record of $LAB_STATE in reverse order. Tolerant of partial state.

lab_teardown() {
  local -a recs=()
  local i kind a b
  lab_flow_stop 2>/dev/null || true
  [[ -f $LAB_STATE ]] || return 0
  mapfile -t recs <"$LAB_STATE"
  for ((i = ${#recs[@]} - 1; i >= 0; i--)); do
    read -r kind a b <<<"${recs[i]}"
    case $kind in
      topo | rate) ;;
      pidfile) lab_stop_pidfile "$a" "$b" ;;
      netns)
        if lab_netns_exists "$a"; then
          local p
          # Only processes inside our own namespace (iperf3, exporter, ...) are stopped here.
          for p in $(ip netns pids "$a" 2>/dev/null); do lab_stop_pid "$p" 2; done
          ip netns del "$a" 2>/dev/null || lab_log "warning: could not delete netns $a"
        fi
        ;;
      link) if lab_link_exists "$a"; then ip link del dev "$a" 2>/dev/null || lab_log "warning: could not delete link $a"; fi ;;
      ovsbr) if [[ -S $OVS_DB_SOCK ]]; then lab_vsctl --if-exists del-br "$a" 2>/dev/null || true; fi ;;
      dir) if [[ $a == "$LAB_DIR"/* ]]; then rm -rf -- "$a"; fi ;;
      file) if [[ $a == "$LAB_DIR"/* ]]; then rm -f -- "$a"; fi ;;
      *) lab_log "warning: unknown state record: ${recs[i]}" ;;
    esac
  done
  rm -f "$LAB_STATE" "$LAB_ENV_FILE"
  rm -rf -- "$FLOW_DIR"
  rmdir "$LAB_DIR" 2>/dev/null || true
}
