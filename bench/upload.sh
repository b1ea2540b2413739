#!/usr/bin/env bash
# Upload of changed extents to one Azurite through libsiterec's store writer
# (bench_upload) against the official @azure/storage-blob SDK (bench/upload_sdk.mjs:
# uploadPages, the same extents, the same number in flight, neither sending MD5),
# alternating library and SDK twice, best of 2 each, in the same run. Prints the
# throughput ratio and the client CPU seconds per GiB of each. Then, when nginx is
# installed, the same Put Pages to an nginx loopback sink that answers 201 and
# drops the body, against curl sending the same PUTs.
#   bench/upload.sh BENCH_UPLOAD_BINARY [TOTAL_MIB [EXTENT_KIB [INFLIGHT]]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$1
mib=${2:-${SITEREC_BENCH_UPLOAD_MIB:-1024}}
kib=${3:-4096}
par=${4:-8}
dir=$(mktemp -d "${TMPDIR:-/tmp}/siterec-bench-upload-XXXXXX")
azpid=
ngpid=
cleanup() {
  [ -n "$azpid" ] && bash "$root/scripts/azurite.sh" stop "$azpid"
  [ -n "$ngpid" ] && kill "$ngpid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
proc_cpu() {  # PID -> user+system CPU seconds so far
  awk -v t="$ticks" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }

read -r port azpid < <(bash "$root/scripts/azurite.sh" start "$dir/azurite")
url=http://127.0.0.1:$port/devstoreaccount1/bench
lib_wall=999999 lib_cpu=999999 sdk_wall=999999 sdk_cpu=999999 az_lib=999999 az_sdk=999999
lib_user=999999 sdk_user=999999
for _ in 1 2; do
  a0=$(proc_cpu "$azpid")
  read -r w c _ _ u < <("$bin" "$url" "$mib" "$kib" "$par")
  a1=$(proc_cpu "$azpid")
  lib_wall=$(min "$w" "$lib_wall"); lib_cpu=$(min "$c" "$lib_cpu"); az_lib=$(min "$(echo "$a1 - $a0" | bc -l)" "$az_lib")
  lib_user=$(min "$u" "$lib_user")
  read -r w c _ _ u < <(node "$root/bench/upload_sdk.mjs" "$url" "$mib" "$kib" "$par")
  a2=$(proc_cpu "$azpid")
  sdk_wall=$(min "$w" "$sdk_wall"); sdk_cpu=$(min "$c" "$sdk_cpu"); az_sdk=$(min "$(echo "$a2 - $a1" | bc -l)" "$az_sdk")
  sdk_user=$(min "$u" "$sdk_user")
done
bash "$root/scripts/azurite.sh" stop "$azpid"; azpid=

bytes=$((mib * 1048576))
gib=$(echo "$mib / 1024" | bc -l)
lib_mbs=$(echo "$bytes / $lib_wall / 1000000" | bc -l)
sdk_mbs=$(echo "$bytes / $sdk_wall / 1000000" | bc -l)
lib_cpg=$(echo "$lib_cpu / $gib" | bc -l)
sdk_cpg=$(echo "$sdk_cpu / $gib" | bc -l)
tratio=$(echo "$sdk_wall / $lib_wall" | bc -l)
cratio=$(echo "$sdk_cpu / $lib_cpu" | bc -l)
printf 'upload %d MiB to Azurite, %d KiB extents, %d in flight: siterec %.1f MB/s (%.3f CPU-s/GiB), SDK %.1f MB/s (%.3f CPU-s/GiB); throughput ratio siterec/SDK = %.2f (goal >= 1), CPU ratio SDK/siterec = %.2f (goal >= 5)\n' \
  "$mib" "$kib" "$par" "$lib_mbs" "$lib_cpg" "$sdk_mbs" "$sdk_cpg" "$tratio" "$cratio"
# user time is the client's own work; system time is mostly the kernel's
# loopback TCP path (copy into socket buffers and, on loopback, the receiving
# side's processing run in the sender's context), which any client pays
printf '  user CPU-s/GiB: siterec %.3f, SDK %.3f; user CPU ratio SDK/siterec = %.2f\n' \
  "$(echo "$lib_user / $gib" | bc -l)" "$(echo "$sdk_user / $gib" | bc -l)" \
  "$(echo "$sdk_user / ($lib_user + 0.0001)" | bc -l)"
printf '  Azurite (server) CPU-s/GiB: %.2f during siterec, %.2f during SDK; %d CPUs\n' \
  "$(echo "$az_lib / $gib" | bc -l)" "$(echo "$az_sdk / $gib" | bc -l)" "$(nproc)"
if [ "$(echo "$tratio > 0.9 && $tratio < 1.1" | bc -l)" = 1 ]; then
  echo "  note: both clients within 10%: the single-threaded Azurite (node) server is the likely bottleneck here, not the client"
fi

# ---- nginx loopback sink against curl ----------------------------------------
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$nginx" ]; then
  echo "upload to nginx sink: skipped (nginx not installed)"
  exit 0
fi
# a free port: bind port 0 and read back what the kernel gave
ngport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/nginx/www"
truncate -s $((mib * 2))M "$dir/nginx/www/disk"
cat > "$dir/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ngport;
    client_max_body_size 8m;
    client_body_buffer_size 8m;
    # the writer's opening HEAD gets a page blob of the disk's size (a sparse file
    # served statically); every other request 201 Created: nginx reads and
    # discards the body first, so the connection stays alive for the next one
    location / {
      if (\$request_method = HEAD) { rewrite ^ /disk break; }
      if (\$request_method != HEAD) { return 201; }
      root $dir/nginx/www;
      add_header x-ms-blob-type PageBlob;
    }
  }
}
EOF
"$nginx" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -e "$dir/nginx/error.log" 2>"$dir/nginx/start.err" &
ngpid=$!
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$ngport/" && break
  sleep 0.1
done
sink=http://127.0.0.1:$ngport/devstoreaccount1/bench

# curl: the same number of PUTs of extent size, the same number in flight, one
# process, keep-alive (what the library does through the curl multi interface)
head -c $((kib * 1024)) /dev/urandom > "$dir/extent"
n=$((mib * 1024 / kib))
{
  for i in $(seq 0 $((n - 1))); do
    printf 'url = "%s/disk?comp=page&i=%d"\nupload-file = "%s"\noutput = "/dev/null"\n' "$sink" "$i" "$dir/extent"
  done
} > "$dir/curl.cfg"
lib_wall=999999 lib_cpu=999999 curl_wall=999999 curl_cpu=999999
for _ in 1 2; do
  read -r w c _ _ < <("$bin" "$sink" "$mib" "$kib" "$par")
  lib_wall=$(min "$w" "$lib_wall"); lib_cpu=$(min "$c" "$lib_cpu")
  # bash's time keyword: wall, and the child's user and system CPU seconds
  t=$( { TIMEFORMAT='%R %U %S'; time curl -s -f --parallel --parallel-max "$par" \
           -H 'x-ms-page-write: update' -H 'x-ms-blob-type: PageBlob' -K "$dir/curl.cfg" >/dev/null 2>"$dir/curl.err"; } 2>&1 )
  read -r w u sy <<<"$t"
  curl_wall=$(min "$w" "$curl_wall")
  curl_cpu=$(min "$(echo "$u + $sy" | bc -l)" "$curl_cpu")
done
lib_mbs=$(echo "$bytes / $lib_wall / 1000000" | bc -l)
curl_mbs=$(echo "$bytes / $curl_wall / 1000000" | bc -l)
printf 'upload %d MiB to an nginx loopback sink, %d KiB extents, %d in flight: siterec %.1f MB/s (%.3f CPU-s/GiB), curl %.1f MB/s (%.3f CPU-s/GiB); ratio siterec/curl = %.2f (goal >= 0.8)\n' \
  "$mib" "$kib" "$par" "$lib_mbs" "$(echo "$lib_cpu / $gib" | bc -l)" "$curl_mbs" \
  "$(echo "$curl_cpu / $gib" | bc -l)" "$(echo "$curl_wall / $lib_wall" | bc -l)"
