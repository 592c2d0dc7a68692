#!/usr/bin/env bash
# Makes the certificates of a meshnet etcd cluster with openssl alone (no network, no other tool):
#   ca.crt, ca.key          the cluster CA (kept when OUTDIR already has one, so members can be added later)
#   MEMBER.crt, MEMBER.key  one per etcd member, for its client and peer ports (serverAuth and clientAuth);
#                           SANs: the member's IP and name, any extra SANs given, 127.0.0.1 and localhost
#   client.crt, client.key  meshnet's client certificate (CN=meshnet, or --client-cn): every agent and CLI uses it
# Existing member and client certificates are kept; delete them to make new ones.
#
# Usage: make-certs.sh [--days N] [--client-cn CN] OUTDIR MEMBER=IP[,SAN...] [MEMBER=IP[,SAN...] ...]
#   e.g. make-certs.sh /etc/meshnet/pki etcd-a=10.1.0.5 etcd-b=10.1.0.6 etcd-c=10.1.0.7,etcd-c.example.net
set -euo pipefail

usage() {
  sed -n '9,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

days=825
client_cn=meshnet
while [ $# -gt 0 ]; do
  case "$1" in
    --days) days=${2:?--days needs a number}; shift 2 ;;
    --client-cn) client_cn=${2:?--client-cn needs a name}; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "make-certs.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
out=$1
shift
case "$days" in ''|*[!0-9]*) echo "make-certs.sh: --days takes a number of days, got $days" >&2; exit 2 ;; esac

# Check every member before making anything.
for spec in "$@"; do
  member=${spec%%=*}
  if [[ $spec != *=* || ! $member =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ || -z ${spec#*=} ]]; then
    echo "make-certs.sh: $spec is not MEMBER=IP[,SAN...] (member names: lower-case letters, digits and -)" >&2
    exit 2
  fi
done

# Private keys are readable by their owner only, from the moment they exist; certificates are public.
umask 077
mkdir -p "$out"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

if [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
  openssl req -x509 "${ec[@]}" -keyout "$out/ca.key" -out "$out/ca.crt" -days $((days * 4)) -subj "/CN=meshnet-etcd-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 644 "$out/ca.crt"
  echo "made $out/ca.crt"
else
  echo "kept $out/ca.crt"
fi

# sign NAME CN EXTENDED_KEY_USAGE [SAN]: a key and a certificate signed by the CA.
sign() {
  local name=$1 cn=$2 eku=$3 san=${4:-}
  if [ -f "$out/$name.crt" ] && [ -f "$out/$name.key" ]; then
    echo "kept $out/$name.crt"
    return
  fi
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new "${ec[@]}" -keyout "$out/$name.key" -out "$out/$name.csr" -subj "/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -CAserial "$out/ca.srl" \
    -days "$days" -extfile "$ext" -out "$out/$name.crt" 2>/dev/null
  rm -f "$ext" "$out/$name.csr"
  chmod 644 "$out/$name.crt"
  echo "made $out/$name.crt${san:+ ($san)}"
}

# One SAN entry: an IPv4/IPv6 address becomes IP:, anything else DNS:.
san_entry() {
  if [[ $1 =~ ^[0-9.]+$ || $1 == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}

for spec in "$@"; do
  member=${spec%%=*}
  names=${spec#*=}
  san="DNS:$member"
  IFS=, read -r -a extra <<<"$names"
  for n in "${extra[@]}" 127.0.0.1 localhost; do
    entry=$(san_entry "$n")
    [[ ",$san," == *",$entry,"* ]] || san="$san,$entry"
  done
  sign "$member" "$member" serverAuth,clientAuth "$san"
done

sign client "$client_cn" clientAuth
