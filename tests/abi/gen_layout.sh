#!/usr/bin/env bash
# Prints the pinned-layout table of tests/abi/test_layout.c from the current headers.
# Only for a deliberate ABI change (write it in CHANGELOG.md).
cd "$(dirname "$0")/../.."
pp=$(gcc -E -P -Iinclude include/siterec/siterec.h)
structs=$(echo "$pp" | grep -oE 'typedef struct siterec_[a-z_0-9]+ \{' | awk '{print $3}')
{
echo '#include <stdio.h>'; echo '#include <stddef.h>'; echo '#include <siterec/siterec.h>'; echo 'int main(void){'
for s in $structs; do
  echo "printf(\"\tS($s, %zu),\n\", sizeof($s));"
  fields=$(echo "$pp" | awk -v s="$s" '$0 ~ "typedef struct "s" \\{" {f=1;next} f&&/^\}/{f=0} f' | grep ';' | sed -E 's/\[[0-9]+\]//; s/\(\*([a-z_0-9]+)\)\(.*/ \1;/; s/.*[ *]([a-z_0-9]+);.*/\1/')
  for f in $fields; do echo "printf(\"\tF($s, $f, %zu),\n\", offsetof($s, $f));"; done
done
echo 'return 0;}'
} > "${TMPDIR:-/tmp}"/siterec_gl.c
gcc -Iinclude "${TMPDIR:-/tmp}"/siterec_gl.c -o "${TMPDIR:-/tmp}"/siterec_gl && "${TMPDIR:-/tmp}"/siterec_gl
