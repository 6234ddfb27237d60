#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter, or nothing.
# pyenv shims answer `python3.10` even when 3.10 is not the active version,
# so each candidate is asked for its version rather than trusted by name.
for candidate in python3.10 \
    "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.10*/bin/python3.10 \
    "$HOME"/.pyenv/versions/3.10*/bin/python3.10 \
    /usr/local/bin/python3.10 /usr/bin/python3.10; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
    command -v "$candidate"
    exit 0
  fi
done
