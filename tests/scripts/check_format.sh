#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The tree is formatted by the root .clang-format, and every source file carries an SPDX line.
set -eu
cd "$1"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find abi core modules tests bench examples -name '*.[ch]')
clang-format --dry-run --Werror $files
bad=0
for f in $files CMakeLists.txt $(git ls-files '*CMakeLists.txt' '*.sh' '*.cmake' 2>/dev/null); do
    if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
        echo "missing SPDX line: $f"
        bad=1
    fi
done
exit $bad
