#!/bin/sh
# Builds one ecs-remediator deb with nfpm from packaging/nfpm.yaml.
#
#   build.sh ARCH VERSION RELEASE BINARY OUTDIR [MANPAGE] [CHANGELOG]
#
# ARCH is Go's (amd64, arm64); BINARY the ecs-remediator built for it;
# MANPAGE the roff page (ecs-remediator __man); CHANGELOG the rendered
# Debian changelog (go run ./packaging/changelog -format deb). Without them
# a placeholder page and a one-entry changelog are used (tests that only
# need the package). nfpm is $NFPM, else bin/nfpm (make nfpm), else on PATH.
set -eu
[ $# -ge 5 ] || { echo "usage: $0 ARCH VERSION RELEASE BINARY OUTDIR [MANPAGE] [CHANGELOG]" >&2; exit 2; }
arch=$1 version=$2 release=$3 binary=$4 outdir=$5 man=${6:-} changelog=${7:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
nfpm=${NFPM:-}
[ -n "$nfpm" ] || { [ -x "$root/bin/nfpm" ] && nfpm=$root/bin/nfpm; } || nfpm=$(command -v nfpm) ||
	{ echo "build.sh: nfpm not found: run make nfpm" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$outdir"
if [ -n "$man" ]; then
	gzip -9n <"$man" >"$work/ecs-remediator.8.gz"
else
	printf '.TH ECS-REMEDIATOR 8\n.SH NAME\necs-remediator\n' | gzip -9n >"$work/ecs-remediator.8.gz"
fi
if [ -n "$changelog" ]; then
	gzip -9n <"$changelog" >"$work/changelog.Debian.gz"
else
	printf 'ecs-remediator (%s-%s) stable; urgency=medium\n\n  * Test build.\n\n -- ecs-remediator maintainers <ecs-remediator@users.noreply.github.com>  Thu, 01 Jan 2026 00:00:00 +0000\n' \
		"$version" "$release" | gzip -9n >"$work/changelog.Debian.gz"
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
outdir=$(cd "$outdir" && pwd)
cd "$root"
ARCH=$arch VERSION=$version RELEASE=$release BINARY=$binary \
	MANPAGE_GZ=$work/ecs-remediator.8.gz CHANGELOG_GZ=$work/changelog.Debian.gz \
	"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$outdir/" >"$work/nfpm.log" 2>&1 ||
	{ cat "$work/nfpm.log" >&2; exit 1; }
ls "$outdir"/ecs-remediator_"$version"-"$release"_"$arch".deb
