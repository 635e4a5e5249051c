#!/bin/bash
# EC2 user data for an Amazon Linux 2 ECS container instance: installs
# ecs-remediator with yum (no amazon-linux-extras needed), optionally with a
# policy, and starts it before the ECS agent comes up. Paste it into the
# launch template's user data (or keep the lines you need in your own script).
#
# Amazon Linux 2 differs from Amazon Linux 2023 (al2023-user-data.sh) in
# three ways this script handles: yum instead of dnf; yum does not install
# the package's Recommends, so iptables-services (which restores the saved
# rules at boot) is installed here; and upstream systemd 219 has no
# `systemctl enable --now` (it came in 220; RHEL 7's 219 backports it), so
# enable and start are two calls, which work on either.
#
# Set:
#   ECS_REMEDIATOR_RPM  where the RPM is: s3://bucket/key, https://..., or a
#                       local path. "{arch}" is replaced by x86_64 or aarch64.
#                       s3:// needs the instance role to allow s3:GetObject on it.
#   ECS_CLUSTER         the cluster to join (written to /etc/ecs/ecs.config).
#   ECS_REMEDIATOR_POLICY  optional: the content of /etc/ecs-remediator/config.yaml;
#                       empty keeps the built-in defaults (man 8 ecs-remediator).
set -euo pipefail

ECS_REMEDIATOR_RPM="${ECS_REMEDIATOR_RPM:-s3://my-artifacts-bucket/ecs-remediator/ecs-remediator-0.1.0-1.{arch}.rpm}"
ECS_CLUSTER="${ECS_CLUSTER:-default}"
ECS_REMEDIATOR_POLICY="${ECS_REMEDIATOR_POLICY:-}"

exec > >(tee -a /var/log/ecs-remediator-user-data.log) 2>&1

arch=$(uname -m)
rpm_src=${ECS_REMEDIATOR_RPM//\{arch\}/$arch}

# The cluster, as AWS's user data examples do. ecs-remediator then makes
# sure the task-role flags are set correctly next to it.
mkdir -p /etc/ecs
grep -q '^ECS_CLUSTER=' /etc/ecs/ecs.config 2>/dev/null || echo "ECS_CLUSTER=${ECS_CLUSTER}" >> /etc/ecs/ecs.config

# A policy written before the install is kept: the package's config.yaml is
# %config(noreplace) and lands beside it as config.yaml.rpmnew.
if [ -n "$ECS_REMEDIATOR_POLICY" ]; then
  mkdir -p /etc/ecs-remediator
  printf '%s\n' "$ECS_REMEDIATOR_POLICY" > /etc/ecs-remediator/config.yaml
fi

case "$rpm_src" in
  s3://*)
    rpm_file=/tmp/ecs-remediator.rpm
    aws s3 cp --only-show-errors "$rpm_src" "$rpm_file"
    ;;
  https://*|http://*)
    rpm_file=/tmp/ecs-remediator.rpm
    curl -fsSL -o "$rpm_file" "$rpm_src"
    ;;
  *) rpm_file=$rpm_src ;;
esac
# rpm 4.11 checks the package's SHA-1 and MD5 digests (and its signature
# once the release key is imported: rpm --import RPM-GPG-KEY-ecs-remediator).
rpm -K "$rpm_file"
# iptables-services: the rules ecs-remediator saves to /etc/sysconfig/iptables
# are restored at boot, before the ECS agent. Its default ruleset in that
# file is replaced by the live one when the daemon first saves, moments
# after it starts below; enable, do not start, the restore unit.
yum install -y iptables-services "$rpm_file"
systemctl enable iptables.service

# Validate the policy now, so a mistake shows in this log (exit 1 = drift,
# which the daemon is about to repair; 2 = an error such as a bad policy).
rc=0
ecs-remediator check > /tmp/ecs-remediator-check.txt 2>&1 || rc=$?
if [ "$rc" -ge 2 ]; then
  echo "WARNING: ecs-remediator check failed (exit $rc); the daemon is started anyway:"
  cat /tmp/ecs-remediator-check.txt
fi

# --no-block: user data runs inside cloud-final.service; waiting here for a
# unit ordered around ecs.service (which is After=cloud-final.service) can
# deadlock boot. The start job is queued and runs before ecs.service starts.
systemctl enable ecs-remediator.service
systemctl start --no-block ecs-remediator.service
