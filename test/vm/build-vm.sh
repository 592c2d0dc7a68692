#!/usr/bin/env bash
# Builds the kernel test VM: a Debian 6.1 kernel (which has the ip_vs, esp4 and gcm modules
# this machine's kernel lacks) and an initramfs holding busybox, ipvsadm, iptables-legacy,
# iproute2, iperf3, node and meshnet's compiled JavaScript.
#
# Usage: build-vm.sh <repo root> <output dir>
# Prints two lines: "kernel <path>" and "initrd <path>".
#
# The kernel and the "base" archive (binaries, libraries, modules) are cached under
# /var/cache/meshnet/vm, keyed by kernel and node version, so reruns only pack the small
# "app" archive (JavaScript + /init). Linux accepts concatenated gzip'd cpio archives.
set -euo pipefail

repo=$(cd "$1" && pwd)
out=$2
cache=${MESHNET_VM_CACHE:-/var/cache/meshnet/vm}
mkdir -p "$cache" "$out"
log() { echo "build-vm: $*" >&2; }

for cmd in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip busybox ipvsadm ip ldd iperf3; do
  command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || { log "missing $cmd (apt-get install busybox-static kmod ipvsadm cpio iproute2 iperf3)"; exit 3; }
done
legacy=$(command -v xtables-legacy-multi || echo /usr/sbin/xtables-legacy-multi)
[ -x "$legacy" ] || { log "missing xtables-legacy-multi (apt-get install iptables)"; exit 3; }

# 1. The kernel package linux-image-amd64 depends on, downloaded and unpacked once.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(kernel_pkg)
# A fresh CI image may have empty package lists.
[ -n "$pkg" ] || { apt-get update -q >/dev/null 2>&1 || true; pkg=$(kernel_pkg); }
[ -n "$pkg" ] || { log "apt-cache names no linux-image-<version> for linux-image-amd64 (run apt-get update)"; exit 3; }
kver=${pkg#linux-image-}
kernel=$cache/vmlinuz-$kver
nodever=$(node --version)
base=$cache/base-$kver-node$nodever-v12.cpio
kdir=$cache/$pkg
# The unpacked package (about 400 MB) is only needed to pack the base archive: unpack it
# then, keep just the kernel image and the .deb, and remove the tree afterwards.
if [ ! -f "$base" ] || [ ! -f "$kernel" ]; then
  log "fetching $pkg"
  deb=$(ls "$cache"/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || { log "apt-get download $pkg failed"; exit 3; }
    deb=$(ls "$cache"/"${pkg}"_*.deb | head -n1)
  fi
  rm -rf "$kdir" && mkdir -p "$kdir"
  dpkg-deb -x "$deb" "$kdir"
  depmod -b "$kdir" "$kver"
  cp "$kdir/boot/vmlinuz-$kver" "$kernel.tmp" && mv "$kernel.tmp" "$kernel"
  rm -f "$base"
fi

# 2. The base archive: everything but our JavaScript.
# IPVS; then ESP in transport mode with rfc4106(gcm(aes)) (the kernel asks modprobe for the
# algorithms, which the VM has not: they are loaded up front, with drbg for the "stdrng" seqiv
# seeds its IVs from, else making an SA fails with ENOENT; jitterentropy_rng fails its health
# test under TCG and drbg does without it), VXLAN on a
# bridge, and the u32/policy/esp matches of the encrypted-overlay firewall and the wire counters. ip6table_mangle
# holds the v6 VIPs' marks; iptable_nat and xt_nat (SNAT) the ingress sandbox's source rewrite.
modules=(ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_mh ip_vs_lc nf_conntrack veth ip_tables iptable_mangle ip6_tables ip6table_mangle xt_mark xt_tcpudp xt_comment
  iptable_nat xt_nat
  xfrm_user esp4 gcm ghash-generic ctr seqiv drbg ecb aesni-intel ghash-clmulni-intel vxlan bridge iptable_filter xt_u32 xt_policy xt_esp)
if [ ! -f "$base" ]; then
  find "$cache" -maxdepth 1 -name 'base-*.cpio' -delete
  log "packing base archive for $kver, node $nodever"
  stage=$(mktemp -d /tmp/meshnet-vm-base-XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,www/b1,www/b2,etc}
  cp "$(command -v busybox)" "$stage/bin/busybox"
  for applet in sh mount umount insmod sleep cat echo poweroff nsenter httpd wget sysctl grep sed hostname mkdir seq ls timeout ping nc tail printf; do
    ln -s busybox "$stage/bin/$applet"
  done
  # Load order from modprobe, once per module (extra names would be taken as parameters).
  : >"$stage/lib/modules/order"
  for m in "${modules[@]}"; do
    modprobe -d "$kdir" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | grep -v crc32c-intel | while read -r ko; do
    cp "$ko" "$stage/lib/modules/"
    basename "$ko" >>"$stage/lib/modules/order"
  done
  copy_bin() { # binary and the libraries ldd names, at the same paths
    local src=$1 dst=$2
    mkdir -p "$stage/$(dirname "$dst")" && cp -L "$src" "$stage/$dst"
    ldd "$src" | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | while read -r lib; do
      mkdir -p "$stage/$(dirname "$lib")" && cp -L "$lib" "$stage/$lib"
    done
  }
  copy_bin "$(readlink -f "$(command -v node)")" /usr/bin/node
  copy_bin "$(command -v ipvsadm || echo /usr/sbin/ipvsadm)" /usr/sbin/ipvsadm
  copy_bin "$(command -v ip || echo /usr/sbin/ip)" /usr/sbin/ip
  copy_bin "$legacy" /usr/sbin/xtables-legacy-multi
  copy_bin "$(command -v iperf3)" /usr/bin/iperf3
  for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do ln -s xtables-legacy-multi "$stage/usr/sbin/$t"; done
  # The extension directory compiled into libxtables is the real (merged-/usr) path.
  xt=$(readlink -f "$(dirname "$(ldd "$legacy" | awk '/libxtables/ {print $3}')")/xtables")
  mkdir -p "$stage/$xt" && cp -L "$xt"/*.so "$stage/$xt/"
  # Uncompressed: gunzip of ~150 MB takes the emulated CPU over 15 s, a plain copy well under one.
  (cd "$stage" && find . -print | cpio -o -H newc --quiet >"$base.tmp") && mv "$base.tmp" "$base"
  rm -rf "$stage" "$kdir"
  trap - EXIT
fi

# 3. The app archive: /init, the compiled JavaScript and the node packages it loads.
for f in dist/test/vm/vm-main.js dist/src/vip/ipvs/ipvs-backend.js dist/src/overlay/encryption-driver.js dist/src/sandbox/netns-switch.js; do
  [ -f "$repo/$f" ] || { log "$repo/$f is missing: run \`npm run build\` first"; exit 4; }
done
app=$(mktemp -d /tmp/meshnet-vm-app-XXXXXX)
trap 'rm -rf "$app"' EXIT
mkdir -p "$app/app/dist/src" "$app/app/dist/test" "$app/app/node_modules"
cp "$repo/test/vm/vm-init.sh" "$app/init" && chmod 755 "$app/init"
cp "$repo/package.json" "$app/app/"
for d in src/vip src/mesh src/sandbox src/runtime src/overlay src/model src/explain test/vm; do
  mkdir -p "$app/app/dist/$d" && cp -r "$repo/dist/$d/." "$app/app/dist/$d/"
done
find "$app/app/dist" \( -name '*.map' -o -name '*.test.js' \) -delete
for p in netlink node-gyp-build koffi @koromix/koffi-linux-x64 zod ipaddr.js; do
  [ -d "$repo/node_modules/$p" ] || { log "node_modules/$p is missing: run npm ci"; exit 4; }
  mkdir -p "$app/app/node_modules/$(dirname "$p")" && cp -r "$repo/node_modules/$p" "$app/app/node_modules/$p"
done
rm -rf "$app/app/node_modules/@koromix/koffi-linux-x64/musl_x64" "$app/app/node_modules/koffi/doc" "$app/app/node_modules/zod/src"
find "$app/app/node_modules/zod" \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.cjs' -o -name '*.map' \) -delete
# Only the x64 Linux prebuilds are needed; the rest is dead weight in RAM.
find "$app/app/node_modules/netlink/prebuilds" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
(cd "$app" && find . -print | cpio -o -H newc --quiet | gzip -1 >"$out/app.cpio.gz")
cat "$base" "$out/app.cpio.gz" >"$out/initramfs.cpio" && rm -f "$out/app.cpio.gz"
cp "$kernel" "$out/vmlinuz"
echo "kernel $out/vmlinuz"
echo "initrd $out/initramfs.cpio"
