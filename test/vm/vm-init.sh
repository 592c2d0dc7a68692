#!/bin/sh
# /init of the kernel test VM (busybox sh). Loads the modules, builds the namespaces of the
# IPVS lab (client / lb / two backends) and of the ESP lab (hosts h1, h2 routed through w, tasks
# t1, t2), runs meshnet's scenarios (node, vm-main.js), prints results between
# "=== BEGIN x ===" / "=== END x ===" markers on the serial console and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "=== STAGE userspace $(cat /proc/uptime) ==="

fail=0
while read -r ko; do
  insmod "/lib/modules/$ko" || { echo "=== FAIL insmod $ko ==="; fail=1; }
done </lib/modules/order
echo "=== STAGE modules $(cat /proc/uptime) ==="

# Lab: client c (10.1.0.2) -> lb (10.1.0.1; VIPs 10.99.0.100/101/102 on lo) -> b1 10.2.0.2, b2 10.3.0.2; the same
# in v6 (fd00:1::2 -> fd00:1::1, VIP fd00:99::102 -> fd00:2::2, fd00:3::2), addresses nodad so they work at once.
# b3 (10.4.0.2, lb 10.4.0.1) stands for a task on another host behind the overlay: no route back to the client, so
# a published port balanced to it answers only when lb rewrites the source (the ingress sandbox's SNAT).
# Commands come from files, one `ip -batch` per namespace: every iproute2 start costs the
# emulated CPU about half a second. (busybox sh would run its own `ip` applet for a bare `ip`.)
IP=/usr/sbin/ip
printf '%s\n' 'link set lo up' 'netns add c' 'netns add lb' 'netns add b1' 'netns add b2' \
  'link add c0 netns c type veth peer name l0 netns lb' \
  'link add b0 netns b1 type veth peer name l1 netns lb' \
  'link add b0 netns b2 type veth peer name l2 netns lb' \
  'netns add b3' 'link add b0 netns b3 type veth peer name l3 netns lb' \
  'netns add h1' 'netns add h2' 'netns add w' 'netns add t1' 'netns add t2' \
  'link add e0 netns h1 type veth peer name w1 netns w' \
  'link add e0 netns h2 type veth peer name w2 netns w' >/tmp/root.ip
printf '%s\n' 'link set lo up' 'addr add 10.1.0.2/24 dev c0' 'addr add fd00:1::2/64 dev c0 nodad' 'link set c0 up' 'route add default via 10.1.0.1' \
  'route add ::/0 via fd00:1::1' >/tmp/c.ip
printf '%s\n' 'link set lo up' 'addr add 10.1.0.1/24 dev l0' 'link set l0 up' 'addr add 10.2.0.1/24 dev l1' 'link set l1 up' \
  'addr add 10.3.0.1/24 dev l2' 'link set l2 up' 'addr add 10.99.0.100/32 dev lo' 'addr add 10.99.0.101/32 dev lo' 'addr add 10.99.0.102/32 dev lo' \
  'addr add 10.4.0.1/24 dev l3' 'link set l3 up' \
  'addr add fd00:1::1/64 dev l0 nodad' 'addr add fd00:2::1/64 dev l1 nodad' 'addr add fd00:3::1/64 dev l2 nodad' 'addr add fd00:99::102/128 dev lo' >/tmp/lb.ip
for i in 1 2; do
  printf '%s\n' 'link set lo up' "addr add 10.$((i + 1)).0.2/24 dev b0" "addr add fd00:$((i + 1))::2/64 dev b0 nodad" 'link set b0 up' \
    "route add default via 10.$((i + 1)).0.1" "route add ::/0 via fd00:$((i + 1))::1" >/tmp/b$i.ip
done
printf '%s\n' 'link set lo up' 'addr add 10.4.0.2/24 dev b0' 'link set b0 up' >/tmp/b3.ip
$IP -batch /tmp/root.ip || fail=1
for ns in c lb b1 b2 b3; do $IP -n $ns -batch /tmp/$ns.ip || fail=1; done
nsenter --net=/run/netns/lb sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || fail=1
for i in 1 2; do
  echo "b$i" >/www/b$i/index.html
  nsenter --net=/run/netns/b$i httpd -p 80 -h /www/b$i || fail=1
  nsenter --net=/run/netns/b$i httpd -p 8080 -h /www/b$i || fail=1
done
mkdir -p /www/b3 && echo b3 >/www/b3/index.html
nsenter --net=/run/netns/b3 httpd -p 8000 -h /www/b3 || fail=1
# The ESP lab's task t2 serves HTTP and iperf3; its addresses come later, from meshnet's overlay.
mkdir -p /www/t2 && echo t2 >/www/t2/index.html
nsenter --net=/run/netns/t2 httpd -p 80 -h /www/t2 || fail=1
nsenter --net=/run/netns/t2 iperf3 -s -D || fail=1
echo "=== STAGE lab $(cat /proc/uptime) ==="

cd /app
/usr/bin/node dist/test/vm/vm-main.js || { echo "=== FAIL scenario exit $? ==="; fail=1; }
echo "=== STAGE done $(cat /proc/uptime) ==="
echo "=== RESULT $([ $fail = 0 ] && echo ok || echo failed) ==="
poweroff -f
