#!/bin/sh
# Prints "VERSION RELEASE" for the packages and the binary, from git:
#
#   on tag vX.Y.Z, clean             -> X.Y.Z 1
#   N commits after vX.Y.Z           -> X.Y.(Z+1) 0.N.gHASH
#   on or after the tag, uncommitted -> X.Y.(Z+1) 0.N.gHASH.dirty
#   no vX.Y.Z tag in the history     -> 0.1.0 0.N.gHASH   (N = all commits)
#   not a git checkout               -> 0.1.0 0.0.unknown
#
# A snapshot thus sorts after the release it follows and before the next
# one, for rpm and dpkg alike: 0.1.0-1 < 0.1.1-0.4.gabc1234 < 0.1.1-1
# (packaging/version_test.go checks it with rpm.vercmp and dpkg
# --compare-versions). `ecs-remediator version` prints VERSION-RELEASE.
#
# Usage: version.sh              from the git checkout this script is in
#        version.sh X.Y.Z        a release given by hand (-> X.Y.Z 1)
#        version.sh DESCRIBE     the output of git describe --long --dirty (for tests)
# RELEASE=N in the environment overrides the release.
set -eu

bump() { # X.Y.Z -> X.Y.(Z+1)
	echo "$1" | awk -F. '{ $NF = $NF + 1; print }' OFS=.
}

map() { # vX.Y.Z-N-gHASH[-dirty] -> "V R"
	d=${1#v}
	dirty=
	case "$d" in *-dirty) dirty=.dirty; d=${d%-dirty} ;; esac
	hash=${d##*-}
	rest=${d%-*}
	n=${rest##*-}
	tag=${rest%-*}
	if ! printf '%s\n' "$tag" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$' ||
		! printf '%s\n' "$n" | grep -Eq '^[0-9]+$' ||
		! printf '%s\n' "$hash" | grep -Eq '^g[0-9a-f]+$'; then
		echo "version.sh: cannot read the version from \"$1\" (want vX.Y.Z-N-gHASH[-dirty])" >&2
		exit 1
	fi
	if [ "$n" = 0 ] && [ -z "$dirty" ]; then
		echo "$tag 1"
	else
		echo "$(bump "$tag") 0.$n.$hash$dirty"
	fi
}

if [ $# -gt 0 ] && [ -n "$1" ]; then
	case "$1" in
	v[0-9]*-*-g*|[0-9]*-*-g*) vr=$(map "$1") ;;
	*)
		v=${1#v}
		if ! printf '%s\n' "$v" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$'; then
			echo "version.sh: \"$1\" is not a version X.Y.Z" >&2
			exit 1
		fi
		vr="$v 1"
		;;
	esac
else
	cd "$(dirname "$0")/.."
	if ! git rev-parse --git-dir >/dev/null 2>&1; then
		vr="0.1.0 0.0.unknown"
	elif d=$(git describe --tags --long --dirty --abbrev=7 --match 'v[0-9]*.[0-9]*.[0-9]*' 2>/dev/null); then
		vr=$(map "$d")
	else
		n=$(git rev-list --count HEAD)
		h=$(git rev-parse --short=7 HEAD)
		dirty=
		git update-index -q --refresh >/dev/null 2>&1 || :
		git diff-index --quiet HEAD -- 2>/dev/null || dirty=.dirty
		vr="0.1.0 0.$n.g$h$dirty"
	fi
fi
if [ -n "${RELEASE:-}" ]; then
	vr="${vr% *} $RELEASE"
fi
echo "$vr"
