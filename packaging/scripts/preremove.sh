#!/bin/sh
# ecs-remediator: before the files are removed.
#   RPM %preun: $1 = 0 on erase, 1 (or more) on upgrade (then nothing to do).
#   deb prerm: $1 = remove on erase; upgrade, deconfigure, failed-upgrade otherwise.
# Erase stops and disables the daemon. It leaves /etc/ecs/ecs.config, the
# iptables rules (live and saved) and /etc/sysctl.d/90-ecs-remediator.conf
# as they are: the ECS agent keeps working with the repaired configuration.
set -e

case "$1" in
  0|remove) ;;
  *) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
  systemctl --no-reload disable --now ecs-remediator.service >/dev/null 2>&1 || :
else
  systemctl --no-reload disable ecs-remediator.service >/dev/null 2>&1 || :
fi
exit 0
