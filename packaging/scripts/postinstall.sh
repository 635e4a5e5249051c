#!/bin/sh
# ecs-remediator: after the files are in place.
#   RPM %post: $1 = 1 on install, 2 (or more) on upgrade.
#   deb postinst: $1 = configure, $2 = the version being upgraded from ("" on install).
# Works without a running systemd (image build chroot): only the calls that
# need the manager are guarded by [ -d /run/systemd/system ].
set -e

case "$1" in
  1) action=install ;;
  [0-9]*) action=upgrade ;;
  configure) if [ -z "$2" ]; then action=install; else action=upgrade; fi ;;
  *) exit 0 ;; # deb abort-upgrade, abort-remove, ...: nothing to do
esac

# /etc/ecs and /run/xtables.lock, which the daemon's sandbox needs to exist
# (at boot systemd-tmpfiles-setup does this).
systemd-tmpfiles --create ecs-remediator.conf >/dev/null 2>&1 || :

# The journal's catalog explains ecs-remediator's messages (journalctl -x).
journalctl --update-catalog >/dev/null 2>&1 || :

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi

if [ "$action" = install ]; then
  # Enables the unit as the preset says (90-ecs-remediator.preset: enable);
  # does not start it: user data or the next boot does.
  systemctl preset ecs-remediator.service >/dev/null 2>&1 || :
else
  # Upgrade: a running daemon picks up the new binary; a stopped one stays stopped.
  if [ -d /run/systemd/system ]; then
    systemctl try-restart ecs-remediator.service >/dev/null 2>&1 || :
  fi
fi
exit 0
