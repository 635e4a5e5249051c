#!/bin/sh
# ecs-remediator: after the files were removed.
#   RPM %postun: $1 = 0 on erase, 1 (or more) on upgrade (then nothing to do:
#   the new package's %post already reloaded and restarted).
#   deb postrm: $1 = remove or purge on erase; upgrade, ... otherwise.
set -e

case "$1" in
  0|remove|purge) ;;
  *) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi
journalctl --update-catalog >/dev/null 2>&1 || :
exit 0
