#!/bin/sh
# Builds one ecs-remediator RPM with rpmbuild from packaging/rpm/ecs-remediator.spec.
#
#   build.sh ARCH VERSION RELEASE BINARY OUTDIR [MANPAGE] [CHANGELOG]
#
# ARCH is Go's (amd64, arm64); BINARY the ecs-remediator built for it;
# MANPAGE the roff page (ecs-remediator.8, from `ecs-remediator __man`);
# CHANGELOG the rendered RPM %changelog (go run ./packaging/changelog -format
# rpm). Without them a placeholder page and no changelog entry are used
# (tests that only need the package). Run from anywhere; writes only a temp
# dir and OUTDIR/ecs-remediator-VERSION-RELEASE.ARCH.rpm.
set -eu
[ $# -ge 5 ] || { echo "usage: $0 ARCH VERSION RELEASE BINARY OUTDIR [MANPAGE] [CHANGELOG]" >&2; exit 2; }
arch=$1 version=$2 release=$3 binary=$4 outdir=$5 man=${6:-} changelog=${7:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
case "$arch" in
	amd64) rpmarch=x86_64 ;;
	arm64) rpmarch=aarch64 ;;
	*) echo "build.sh: ARCH $arch: want amd64 or arm64" >&2; exit 2 ;;
esac
command -v rpmbuild >/dev/null || { echo "build.sh: rpmbuild not found (apt-get install -y rpm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src" "$work/top" "$outdir"
cp "$binary" "$src/ecs-remediator"
cp "$root/systemd/ecs-remediator.service" "$root/systemd/90-ecs-remediator.preset" \
	"$root/systemd/ecs-remediator.catalog" "$root/packaging/tmpfiles.conf" \
	"$root/packaging/config.yaml" "$root/LICENSE" "$root/README.md" "$root/CHANGELOG.md" "$src/" 2>/dev/null ||
	cp "$root/systemd/ecs-remediator.service" "$root/systemd/90-ecs-remediator.preset" \
		"$root/systemd/ecs-remediator.catalog" "$root/packaging/tmpfiles.conf" \
		"$root/packaging/config.yaml" "$root/LICENSE" "$root/README.md" "$src/"
[ -f "$src/CHANGELOG.md" ] || : >"$src/CHANGELOG.md"
# docs/, installed next to README.md, whose links point into it.
mkdir "$src/docs"
cp "$root"/docs/*.md "$src/docs/"
if [ -n "$man" ]; then
	gzip -9n <"$man" >"$src/ecs-remediator.8.gz"
else
	printf '.TH ECS-REMEDIATOR 8\n.SH NAME\necs-remediator\n' | gzip -9n >"$src/ecs-remediator.8.gz"
fi

# The spec with the maintainer scripts and the changelog put in.
awk -v scripts="$root/packaging/scripts" -v changelog="$changelog" '
	/^@SCRIPT:.*@$/ {
		f = scripts "/" substr($0, 9, length($0) - 9)
		while ((getline line < f) > 0) print line
		close(f); next
	}
	/^@CHANGELOG@$/ {
		if (changelog != "") { while ((getline line < changelog) > 0) print line; close(changelog) }
		next
	}
	{ print }
' "$root/packaging/rpm/ecs-remediator.spec" >"$work/ecs-remediator.spec"

rpmbuild -bb --quiet --target "$rpmarch-linux" \
	--define "_topdir $work/top" \
	--define "pkg_version $version" \
	--define "pkg_release $release" \
	--define "pkg_src $src" \
	"$work/ecs-remediator.spec" >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; exit 1; }
cp "$work/top/RPMS/$rpmarch/ecs-remediator-$version-$release.$rpmarch.rpm" "$outdir/"
echo "$outdir/ecs-remediator-$version-$release.$rpmarch.rpm"
