#!/bin/bash
# Builds the pjdfstest binary in a pjdfstest checkout without autotools (Linux, glibc), so that
#   PJDFSTEST_DIR=<checkout> ctest -R fs_pjdfstest_test
# can run the POSIX acceptance suite on an AstraFS mount.
# Usage: tests/fs/build-pjdfstest.sh /path/to/pjdfstest-checkout
set -euo pipefail
dir=${1:?usage: build-pjdfstest.sh PJDFSTEST_CHECKOUT}
cd "$dir"
: > config.h
defs=(HAVE_FACCESSAT HAVE_FCHMODAT HAVE_FCHOWNAT HAVE_FSTATAT HAVE_LINKAT HAVE_MKDIRAT
      HAVE_MKFIFOAT HAVE_MKNODAT HAVE_OPENAT HAVE_POSIX_FALLOCATE HAVE_RENAMEAT HAVE_SYMLINKAT
      HAVE_UNLINKAT HAVE_UTIMENSAT HAVE_STRUCT_STAT_ST_ATIM HAVE_STRUCT_STAT_ST_CTIM
      HAVE_STRUCT_STAT_ST_MTIM HAVE_SYS_SYSMACROS_H)
cc -O1 -D_GNU_SOURCE "${defs[@]/#/-D}" -include config.h pjdfstest.c -o pjdfstest
echo "built $dir/pjdfstest"
