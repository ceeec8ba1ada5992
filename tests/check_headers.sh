#!/usr/bin/env bash
# Compiles each public header alone (tests/headers.cmake): `#include <hyplora/...>` as the whole
# translation unit, -fsyntax-only.   usage: check_headers.sh CXX FLAGS_FILE INCLUDE_DIR
set -uo pipefail
CXX="$1" FLAGS_FILE="$2" INC="$3"
implicit=$(sed -n 's/^#implicit //p' "$FLAGS_FILE")
flags=()
while IFS= read -r f; do
  case "$f" in ''|-I|-D|'#'*) continue ;; esac   # empty joins leave a bare -I / -D
  if [ "${f#-I}" != "$f" ] && printf '%s\n' "$implicit" | grep -qxF -- "$f"; then continue; fi
  printf '%s\n' "${flags[@]}" | grep -qxF -- "$f" && continue   # once each
  flags+=("$f")
done < "$FLAGS_FILE"
echo "flags: ${flags[*]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 skipped=0 failed=0
while IFS= read -r h; do
  rel=${h#"$INC"/}
  if grep -q 'compiled by nvcc only' "$h"; then skipped=$((skipped + 1)); continue; fi
  printf '#include <%s>\n' "$rel" > "$tmp/tu.cpp"
  if ! "$CXX" "${flags[@]}" -fsyntax-only "$tmp/tu.cpp" > "$tmp/err" 2>&1; then
    echo "FAIL: $rel does not compile on its own:"
    head -15 "$tmp/err"
    failed=$((failed + 1))
  fi
  n=$((n + 1))
done < <(find "$INC/hyplora" -name '*.hpp' | sort)
echo "$((n - failed)) of $n public headers compile on their own ($skipped for nvcc only not tried)"
[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
