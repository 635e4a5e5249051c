#!/bin/sh
# Turns a version string (git describe --tags --always --dirty, or what the
# Makefile's VERSION says) into an RPM/deb-valid "VERSION RELEASE" pair.
#   1.2.3                    -> 1.2.3 1
#   v1.2.3                   -> 1.2.3 1
#   1.2.3-4-gabc1234         -> 1.2.3 1.4.gabc1234         (4 commits after the tag sort higher)
#   1.2.3-4-gabc1234-dirty   -> 1.2.3 1.4.gabc1234.dirty
#   abc1234[-dirty] (no tag) -> 0.1.0 0.gabc1234[.dirty]   (sorts below 0.1.0-1)
#   anything else            -> 0.1.0 0.<sanitised>
# Usage: version.sh STRING   (RELEASE=N in the environment overrides the release)
v=${1#v}
case "$v" in
  *-dirty) dirty=.dirty; v=${v%-dirty} ;;
  *) dirty= ;;
esac
if [ -z "$v" ]; then
  ver=0.1.0 rel=1
elif printf '%s' "$v" | grep -Eq '^[0-9]+(\.[0-9]+)*$'; then
  ver=$v rel=1
elif printf '%s' "$v" | grep -Eq '^[0-9]+(\.[0-9]+)*-[0-9]+-g[0-9a-f]+$'; then
  ver=${v%%-*}
  rest=${v#*-}
  rel="1.${rest%%-*}.${rest#*-}"
elif printf '%s' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
  ver=0.1.0 rel="0.g$v"
else
  ver=0.1.0 rel="0.$(printf '%s' "$v" | tr -c 'A-Za-z0-9.\n' '.')"
fi
[ -n "$RELEASE" ] && rel=$RELEASE
echo "$ver $rel$dirty"
