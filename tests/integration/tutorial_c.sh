#!/bin/bash
# The tutorial's C program (examples/tutorial/lifecycle.c) runs every step of a
# VM's life to its end in a scratch directory. $1: the program.
bin=$1
. "$(dirname "$0")/lib.sh"
check 0 "lifecycle" "$bin" "$dir/vm"
cat "$dir/out"
for step in "1. protected web1" "3. point" "4. drill done" "5. failed over and committed" \
            "6. failed back" "7. protected again"; do need "$step"; done
finish
