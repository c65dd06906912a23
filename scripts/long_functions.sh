#!/usr/bin/env bash
# Lists the functions longer than ${1:-120} lines in the library and launcher sources (*.cc of ps
# data models worker scheduler serving launch config) as FILE:LINE: NAME (N lines), longest
# first; exit status 1 when there is any. A function is what Google style lays out: a signature
# starting in column 0 down to the first "}" in column 0, both counted. Functions defined inside
# a class body are not seen (they are meant to be short).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-120}
find ps data models worker scheduler serving launch config -name '*.cc' | sort |
  xargs awk -v limit="$limit" '
    FNR == 1 { start = 0 }
    start == 0 && /^[A-Za-z_~]/ && /\(/ &&
        !/^(namespace|class|struct|union|enum|using|typedef|template|extern|static_assert)\b/ {
      start = FNR
      body = 0
      name = $0
      sub(/\(.*/, "", name)
      n = split(name, words, /[ \t*&]+/)
      name = words[n]
    }
    start > 0 && !body && /\{/ { body = 1 }
    start > 0 && !body && /;[ \t]*(\/\/.*)?$/ { start = 0 }  # a declaration, not a definition
    start > 0 && FNR > start && /^}/ {
      lines = FNR - start + 1
      if (lines > limit) printf "%d %s:%d: %s (%d lines)\n", lines, FILENAME, start, name, lines
      start = 0
    }
  ' | sort -rn | cut -d" " -f2- | awk '{ print } END { exit NR > 0 }'
