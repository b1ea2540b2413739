#!/usr/bin/env bash
# Install into a scratch prefix and build a program the way README.md says:
# `pkg-config --cflags --libs siterec`, shared and static.
set -euo pipefail
builddir=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/siterec-pc-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
meson install -C "$builddir" --destdir "$tmp" --quiet >/dev/null
pcdir=$(dirname "$(find "$tmp" -name siterec.pc | head -n 1)")
[ -n "$pcdir" ] || { echo "siterec.pc not installed"; exit 1; }
for h in siterec.h common.h tracker.h dlog.h; do
  find "$tmp" -path "*/include/siterec/$h" | grep -q . || { echo "header $h not installed"; exit 1; }
done
cat > "$tmp/app.c" <<'C'
#include <siterec/siterec.h>
#include <stdio.h>
int main(void) {
	siterec_tracker *t;
	if (siterec_tracker_open(&t, 1 << 20, NULL)) return 1;
	int rc = siterec_tracker_mark(t, 0, 4096);
	siterec_tracker_free(t);
	printf("libsiterec %s\n", siterec_version(NULL, NULL, NULL));
	return rc ? 1 : 0;
}
C
export PKG_CONFIG_PATH=$pcdir
prefix=$(pkg-config --variable=prefix "$pcdir/siterec.pc")
pc="pkg-config --define-variable=prefix=$tmp$prefix"
cc "$tmp/app.c" -o "$tmp/app" $($pc --cflags --libs siterec)
LD_LIBRARY_PATH=$(dirname "$(find "$tmp" -name 'libsiterec.so.1' | head -n 1)") "$tmp/app"
if find "$tmp" -name libsiterec.a | grep -q .; then
  # the archive with its dependencies as shared libraries (README.md): the
  # dependencies' own --static closures need -dev packages nobody installs
  priv=$(sed -n 's/^Libs.private: //p' "$pcdir/siterec.pc")
  libdir=$(dirname "$(find "$tmp" -name libsiterec.a | head -n1)")
  libs="-L$libdir -Wl,-Bstatic -lsiterec -Wl,-Bdynamic $(pkg-config --libs libcurl libcjson libxxhash) $priv"
  cc "$tmp/app.c" -o "$tmp/app-static" $($pc --cflags siterec) $libs
  if ldd "$tmp/app-static" | grep -q libsiterec; then echo "static app still needs libsiterec.so"; exit 1; fi
  "$tmp/app-static"
fi
echo "ok: pkg-config build, shared and static"
