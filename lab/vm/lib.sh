# shellcheck shell=bash disable=SC2034 # settings here are used by the scripts that source this file
# Shared settings for lab/vm/build and lab/vm/run (sourced, never executed).
#
#   FLOWPATH_VM_CACHE   where the guest pieces are cached     default /var/cache/flowpath-vm
#   FLOWPATH_VM_KERNEL  Debian kernel package for the guest   default: what linux-image-amd64 depends on
#                       (bookworm: linux-image-6.1.0-N-amd64; the generic flavour: it has 9p, cloud has none)
#   FLOWPATH_VM_MEM     guest memory (MiB)                    default 1024
#   FLOWPATH_VM_CPUS    guest CPUs                            default 2
#   FLOWPATH_VM_ACCEL   qemu accelerators, in order           default "tcg" (kvm: only when /dev/kvm opens)

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=$(cd "$VM_DIR/../.." && pwd)
VM_CACHE=${FLOWPATH_VM_CACHE:-/var/cache/flowpath-vm}
VM_MEM=${FLOWPATH_VM_MEM:-1024}
VM_CPUS=${FLOWPATH_VM_CPUS:-2}
VM_PROG=${VM_PROG:-vm}

vm_log() { printf '%s: %s\n' "$VM_PROG" "$*" >&2; }
vm_die() { printf '%s: error: %s\n' "$VM_PROG" "$*" >&2; exit 1; }

vm_require_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) || vm_die "missing commands: ${missing[*]} (scripts/install-test-deps installs qemu-system-x86, busybox-static, cpio)"
}

# The kernel package: FLOWPATH_VM_KERNEL, else the one Debian's linux-image-amd64 metapackage points at.
vm_kernel_pkg() {
  if [[ -n ${FLOWPATH_VM_KERNEL:-} ]]; then echo "$FLOWPATH_VM_KERNEL"; return; fi
  local p
  p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\..*-amd64$/ { print $2; exit }')
  [[ -n $p ]] || vm_die "apt knows no linux-image-6.1.*-amd64 (run apt-get update; a Debian bookworm mirror must be configured)"
  echo "$p"
}

vm_kernel_version() { # PKG -> Debian version of the candidate
  apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }'
}

# Directory of one cached kernel: vmlinuz, the unpacked modules (root/lib/modules/KREL, depmod'ed) and
# krel (the kernel release string). Keyed by package name and version.
vm_kernel_dir() { echo "$VM_CACHE/kernel/$1_$2"; }

# Hash of what goes into the initramfs besides the kernel: the init script and busybox.
vm_initramfs_key() {
  local bb
  bb=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
  printf '%s\n%s\n' "$bb" "$(cat "$VM_DIR/initramfs-init")" | sha256sum | cut -c1-16
}
