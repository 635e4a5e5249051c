#!/bin/sh
# Finishes a release directory that `make packages` filled (make release):
#
#   release.sh DIST
#
# With RELEASE_GPG_KEY=/path/to/secret-key.asc (an armored or binary secret
# key; never one in this repository) the RPMs are signed with rpmsign (a v4
# header signature and, for rpm 4.11 on Amazon Linux 2, the v3
# header+payload one), the public key is written to
# DIST/RPM-GPG-KEY-ecs-remediator, and SHA256SUMS gets a detached armored
# signature SHA256SUMS.asc. RELEASE_GPG_PASSPHRASE_FILE names the key's
# passphrase when it has one. The key must be RSA: rpm 4.11 verifies no
# other kind. The debs are trusted through SHA256SUMS, as most projects ship
# them. The key is imported into a temporary GNUPGHOME, removed at the end.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIST" >&2; exit 2; }
dist=$1
cd "$dist"
ls ./*.rpm ./*.deb >/dev/null 2>&1 || { echo "release.sh: no RPMs or debs in $dist (make packages first)" >&2; exit 1; }
rm -f SHA256SUMS SHA256SUMS.asc RPM-GPG-KEY-ecs-remediator

if [ -n "${RELEASE_GPG_KEY:-}" ]; then
	[ -r "$RELEASE_GPG_KEY" ] || { echo "release.sh: RELEASE_GPG_KEY=$RELEASE_GPG_KEY is not a readable file" >&2; exit 1; }
	gpg=$(command -v gpg) || { echo "release.sh: gpg not found (apt-get install -y gnupg)" >&2; exit 1; }
	command -v rpmsign >/dev/null || { echo "release.sh: rpmsign not found (apt-get install -y rpm)" >&2; exit 1; }
	GNUPGHOME=$(mktemp -d)
	export GNUPGHOME
	trap 'gpgconf --kill all >/dev/null 2>&1 || :; rm -rf "$GNUPGHOME"' EXIT
	chmod 700 "$GNUPGHOME"
	pass=
	if [ -n "${RELEASE_GPG_PASSPHRASE_FILE:-}" ]; then
		pass="--pinentry-mode loopback --passphrase-file $RELEASE_GPG_PASSPHRASE_FILE"
	fi
	# shellcheck disable=SC2086
	"$gpg" --batch --quiet $pass --import "$RELEASE_GPG_KEY"
	fpr=$("$gpg" --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
	[ -n "$fpr" ] || { echo "release.sh: $RELEASE_GPG_KEY holds no secret key" >&2; exit 1; }
	algo=$("$gpg" --batch --with-colons --list-secret-keys | awk -F: '$1 == "sec" { print $4; exit }')
	[ "$algo" = 1 ] || echo "release.sh: warning: key $fpr is not RSA (algorithm $algo): rpm 4.11 (Amazon Linux 2) cannot verify its signatures" >&2
	"$gpg" --batch --armor --export "$fpr" >RPM-GPG-KEY-ecs-remediator
	rpmsign --addsign --rpmv3 \
		--define "__gpg $gpg" \
		--define "_gpg_path $GNUPGHOME" \
		--define "_gpg_name $fpr" \
		--define "_gpg_digest_algo sha256" \
		--define "_gpg_sign_cmd_extra_args --batch $pass" \
		./*.rpm >/dev/null
	# shellcheck disable=SC2086
	sha256sum ./*.rpm ./*.deb RPM-GPG-KEY-ecs-remediator | sed 's| \./| |' >SHA256SUMS
	"$gpg" --batch --yes $pass --local-user "$fpr" --armor --detach-sign --output SHA256SUMS.asc SHA256SUMS
	echo "release: signed $(ls ./*.rpm | wc -l) RPMs and SHA256SUMS with key $fpr"
else
	sha256sum ./*.rpm ./*.deb | sed 's| \./| |' >SHA256SUMS
	echo "release: unsigned (set RELEASE_GPG_KEY=/path/to/secret-key.asc to sign the RPMs and SHA256SUMS)"
fi
sha256sum -c --quiet SHA256SUMS
