#!/bin/bash
# Boot a real Lima (v2.2.0) VM on Debian 12 entirely from local parts:
#   limactl built from the Go module + guest agent built from the same module,
#   Debian bookworm root from debootstrap -> ext4 qcow2 image, direct kernel boot (no bootloader),
#   QEMU forced onto TCG (this host's /dev/kvm is kvm_pvm, see qemu wrapper below).
# Run as root. Everything lives in /tmp/limaboot; the VM runs as the unprivileged user nerdlab-vm.
# A measurement, not a test: it installs QEMU and debootstrap from Debian, creates the user
# nerdlab-vm and a kvm group, and gives /dev/kvm to that group. Figures go to logs/timings.txt.
# Usage: bench/lima-vm-boot.sh [all|packages|user|guestagent|rootfs|image|vm]...   (default: all)
set -euo pipefail
B=/tmp/limaboot
VMUSER=nerdlab-vm
LIMACTL_SRC=${LIMACTL:-/usr/local/bin/limactl}   # from .ci/install-limactl (lima/v2@v2.2.0)
LIMA_VER=v2.2.0
mkdir -p $B/logs
TIMINGS=$B/logs/timings.txt

timed() { # timed NAME cmd...
	local name=$1; shift
	local s e rc=0
	s=$(date +%s.%N)
	"$@" || rc=$?
	e=$(date +%s.%N)
	printf '%-12s %8.2f s  rc=%d  (%s)\n' "$name" "$(echo "$e - $s" | bc)" "$rc" "$(date -u +%FT%TZ)" | tee -a $TIMINGS
	return $rc
}

stage_packages() {
	timeout 600 apt-get update >$B/logs/apt-update.log 2>&1
	DEBIAN_FRONTEND=noninteractive timeout 1200 nice -n 15 apt-get install -y --no-install-recommends \
		qemu-system-x86 qemu-utils ovmf debootstrap e2fsprogs genisoimage openssh-client bc \
		>$B/logs/apt-install.log 2>&1
}

stage_user() {
	# No udev here, so /dev/kvm is root:root 0600 and there is no kvm group.
	getent group kvm >/dev/null || groupadd -r kvm
	chgrp kvm /dev/kvm && chmod 660 /dev/kvm
	id $VMUSER >/dev/null 2>&1 || useradd -m -d $B/home -s /bin/bash -G kvm $VMUSER
	mkdir -p $B/share $B/lima-home $B/vmlogs
	chown $VMUSER: $B/share $B/lima-home $B/vmlogs
}

stage_guestagent() {
	local modcache moddir
	modcache=$(go env GOMODCACHE)
	moddir=$modcache/github.com/lima-vm/lima/v2@$LIMA_VER
	if [ ! -d "$moddir" ]; then # fetch the module without needing the version list
		(cd "$(mktemp -d)" && go mod init tmp >/dev/null 2>&1 && go mod download github.com/lima-vm/lima/v2@$LIMA_VER)
	fi
	mkdir -p $B/prefix/bin $B/prefix/share/lima $B/prefix/libexec-qemu
	install -m 755 $LIMACTL_SRC $B/prefix/bin/limactl
	# Makefile: CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -ldflags="-s -w -X .../pkg/version.Version=$(VERSION)" ./cmd/lima-guestagent
	# Lima looks for <dir of limactl>/../share/lima/lima-guestagent.Linux-x86_64[.gz]
	(cd "$moddir" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOOS=linux GOARCH=amd64 timeout 900 nice -n 15 \
		go build -ldflags="-s -w" -o $B/prefix/share/lima/lima-guestagent.Linux-x86_64 ./cmd/lima-guestagent) \
		>$B/logs/ga-build.log 2>&1
	chmod 644 $B/prefix/share/lima/lima-guestagent.Linux-x86_64
	# templates are optional for `start FILE.yaml`, but `limactl info` needs templates/default.yaml
	rm -rf $B/prefix/share/lima/templates
	cp -r "$moddir/templates" $B/prefix/share/lima/templates && chmod -R u+w,a+rX $B/prefix/share/lima/templates
	# QEMU wrapper (passed to Lima via QEMU_SYSTEM_X86_64): force TCG.
	cat >$B/prefix/libexec-qemu/qemu-system-x86_64-tcg <<'EOF'
#!/bin/bash
# Force QEMU's TCG accelerator. This host's /dev/kvm is provided by kvm_pvm (nested "PVM"):
# -cpu host/max abort on "failed to set MSR 0x10a", and with other CPU models a stock Debian
# kernel crawls (decompressor still running after 60 s). Lima picks accel=kvm whenever
# /dev/kvm exists, so rewrite its -machine argument to what Lima itself uses for TCG.
args=()
for a in "$@"; do
  case "$a" in
    q35,accel=kvm) args+=("q35,vmport=off" "-accel" "tcg,thread=multi,tb-size=512") ;;
    *) args+=("$a") ;;
  esac
done
exec /usr/bin/qemu-system-x86_64 "${args[@]}"
EOF
	chmod 755 $B/prefix/libexec-qemu/qemu-system-x86_64-tcg
}

stage_rootfs() {
	local R=$B/rootfs
	rm -rf "$R"; mkdir -p "$R"
	# python3-cffi-backend must be listed explicitly: debootstrap does not resolve the virtual
	# python3-cffi-backend-api-{min,max} deps of python3-cryptography (pulled in by cloud-init).
	# rsync/iptables/sshfs: Lima's boot script 30-install-packages.sh apt-installs them at boot if missing.
	local PKGS=python3-cffi-backend,systemd-sysv,udev,dbus,kmod,cloud-init,cloud-guest-utils,openssh-server,sudo
	PKGS=$PKGS,linux-image-amd64,initramfs-tools,iproute2,ifupdown,isc-dhcp-client,netbase,sshfs,fuse3,rsync
	PKGS=$PKGS,ca-certificates,iptables,procps,e2fsprogs,less,iputils-ping,apt-transport-https
	# libpam-systemd: without it user@UID.service (started by Lima's `loginctl enable-linger`) fails
	PKGS=$PKGS,libpam-systemd
	timeout 1800 nice -n 15 debootstrap --variant=minbase --include="$PKGS" bookworm "$R" http://deb.debian.org/debian \
		>$B/logs/debootstrap.log 2>&1
}

stage_image() {
	local R=$B/rootfs OUT=$B/image
	mkdir -p "$OUT"
	cat >"$R/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
	echo 'LABEL=limaroot / ext4 defaults,errors=remount-ro 0 1' >"$R/etc/fstab"
	# locale: minbase has no `locales`; cloud-init's default en_US.UTF-8 makes cloud-config.service fail
	printf 'datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n' >"$R/etc/cloud/cloud.cfg.d/99-lima.cfg"
	echo localhost >"$R/etc/hostname"
	rm -f "$R/etc/resolv.conf"                     # dhclient writes it at boot
	: >"$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
	rm -f "$R"/etc/ssh/ssh_host_*                  # cloud-init regenerates host keys
	chroot "$R" apt-get clean
	rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
	cp "$R"/boot/vmlinuz-* "$OUT/vmlinuz"
	cp "$R"/boot/initrd.img-* "$OUT/initrd.img"
	local SZ; SZ=$(du -sm "$R" | cut -f1); SZ=$((SZ + SZ / 2 + 256))
	rm -f "$OUT/rootfs.raw" "$OUT/debian-bookworm-lima.qcow2"
	truncate -s ${SZ}M "$OUT/rootfs.raw"
	# whole-disk ext4 (no partition table): root=LABEL=limaroot; cloud-init resize2fs grows it to `disk:`
	nice -n 15 mkfs.ext4 -q -L limaroot -d "$R" "$OUT/rootfs.raw"
	nice -n 15 qemu-img convert -f raw -O qcow2 "$OUT/rootfs.raw" "$OUT/debian-bookworm-lima.qcow2"
	rm -f "$OUT/rootfs.raw"
	chmod 644 "$OUT"/*
	ls -la "$OUT" | tee $B/logs/image-ls.txt
}

write_lima_yaml() {
	cat >$B/lima.yaml <<'EOF'
# Lima template for a locally built Debian bookworm image (direct kernel boot, no bootloader)
vmType: qemu
os: Linux
arch: x86_64
images:
- location: /tmp/limaboot/image/debian-bookworm-lima.qcow2
  arch: x86_64
  kernel:
    location: /tmp/limaboot/image/vmlinuz
    arch: x86_64
    cmdline: root=LABEL=limaroot rw console=ttyS0 net.ifnames=0
  initrd:
    location: /tmp/limaboot/image/initrd.img
    arch: x86_64
vmOpts:
  qemu:
    cpuType:
      x86_64: max   # TCG (see qemu wrapper); "host" (the default) aborts under this host's kvm_pvm
cpus: 2
memory: 2GiB
disk: 8GiB
firmware:
  legacyBIOS: true  # no OVMF needed with -kernel
video:
  display: none
mountType: 9p       # reverse-sshfs would need sftp-server on the host
mounts:
- location: /tmp/limaboot/share
  writable: true
containerd:
  system: false
  user: false
EOF
	chmod 644 $B/lima.yaml
}

write_vm_test() {
	cat >$B/vm-test.sh <<'EOF'
#!/bin/bash
# Runs as the unprivileged user: start, exercise, stop, delete a Lima VM. Prints timings.
set -u
export LIMA_HOME=/tmp/limaboot/lima-home
export QEMU_SYSTEM_X86_64=/tmp/limaboot/prefix/libexec-qemu/qemu-system-x86_64-tcg
L="nice -n 15 /tmp/limaboot/prefix/bin/limactl --tty=false"
N=${VMNAME:-deb}
T=/tmp/limaboot/vmlogs
t() { local name=$1; shift; local s e rc; s=$(date +%s.%N); "$@"; rc=$?; e=$(date +%s.%N); printf '%-18s %8.2f s rc=%d\n' "$name" "$(echo "$e-$s"|bc)" "$rc" | tee -a $T/vm-timings.txt; return $rc; }
: > $T/vm-timings.txt
t start timeout 660 $L start --timeout 10m --name "$N" /tmp/limaboot/lima.yaml > $T/start.log 2>&1 || {
  echo "start failed"; tail -40 $T/start.log; tail -n 60 $LIMA_HOME/$N/serial.log
  cp $LIMA_HOME/$N/serial.log $LIMA_HOME/$N/ha.stderr.log $T/ 2>/dev/null
  [ "${KEEP_ON_FAIL:-0}" = 1 ] && exit 1; timeout 120 $L delete -f "$N"; exit 1; }
timeout 30 $L list --format json > $T/list.json; grep -o '"status":"[A-Za-z]*"' $T/list.json
for i in 1 2 3 4 5; do t shell$i timeout 60 $L shell "$N" uname -a; done
echo "--- mount/write test as guest user"
timeout 60 $L shell "$N" sh -c 'id; mount | grep /tmp/limaboot/share; echo "written-by-guest $(date)" > /tmp/limaboot/share/from-guest.txt && ls -la /tmp/limaboot/share'
echo "host sees: $(cat /tmp/limaboot/share/from-guest.txt 2>&1)"; ls -la /tmp/limaboot/share
echo "--- sudo test"
timeout 60 $L shell "$N" sudo -n id
echo "--- guest diagnostics"
timeout 60 $L shell "$N" sh -c 'systemctl is-active lima-guestagent; systemctl --failed --no-legend; sudo grep -E "LIMA .*(WARNING|Exiting)" /var/log/cloud-init-output.log; df -h /; cat /etc/resolv.conf; sudo cloud-init schema --system 2>&1 | tail -8; loginctl list-users --no-legend'
if [ "${APT_TEST:-1}" = 1 ]; then
  echo "--- apt test in guest"
  t guest-apt-update timeout 300 $L shell "$N" sudo -n apt-get update
  t guest-apt-install timeout 300 $L shell "$N" sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hello
  timeout 60 $L shell "$N" hello
fi
cp $LIMA_HOME/$N/serial.log $LIMA_HOME/$N/ha.stderr.log $T/ 2>/dev/null
t stop timeout 300 $L stop "$N" > $T/stop.log 2>&1 || tail -20 $T/stop.log
timeout 30 $L list
t delete timeout 120 $L delete -f "$N" > $T/delete.log 2>&1 || tail -20 $T/delete.log
timeout 30 $L list
cat $T/vm-timings.txt
EOF
	chmod 755 $B/vm-test.sh
}

stage_vm() {
	write_lima_yaml
	write_vm_test
	su $VMUSER -c "cd $B && ./vm-test.sh" 2>&1 | tee $B/vmlogs/vm-test.log
}

stages=("$@"); [ ${#stages[@]} -eq 0 ] && stages=(all)
[ "${stages[0]}" = all ] && stages=(packages user guestagent rootfs image vm)
for st in "${stages[@]}"; do
	timed "$st" "stage_$st"
done
du -sh $B/image/* $B/rootfs $B/prefix/share/lima/lima-guestagent.Linux-x86_64 | tee $B/logs/sizes.txt
