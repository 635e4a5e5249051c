#!/bin/bash
# EC2 user data for an Ubuntu (20.04, 22.04, 24.04) or Debian 12 ECS
# container instance on which the ECS agent is installed (ecs-init's deb or
# your own unit named ecs.service): installs ecs-remediator's deb with apt
# and starts it before the ECS agent comes up.
#
# apt installs the package's Recommends, iptables-persistent, which
# restores the rules ecs-remediator saves to /etc/iptables/rules.v4 at boot.
#
# Set:
#   ECS_REMEDIATOR_DEB  where the deb is: https://..., s3://... (needs the
#                       AWS CLI and s3:GetObject), or a local path. "{arch}" is
#                       replaced by amd64 or arm64.
#   ECS_CLUSTER         the cluster to join (written to /etc/ecs/ecs.config).
#   ECS_REMEDIATOR_POLICY  optional: the content of /etc/ecs-remediator/config.yaml;
#                       empty keeps the built-in defaults (man 8 ecs-remediator).
set -euo pipefail

ECS_REMEDIATOR_DEB="${ECS_REMEDIATOR_DEB:-https://example.com/ecs-remediator/ecs-remediator_0.1.0-1_{arch}.deb}"
ECS_CLUSTER="${ECS_CLUSTER:-default}"
ECS_REMEDIATOR_POLICY="${ECS_REMEDIATOR_POLICY:-}"

exec > >(tee -a /var/log/ecs-remediator-user-data.log) 2>&1

arch=$(dpkg --print-architecture)
deb_src=${ECS_REMEDIATOR_DEB//\{arch\}/$arch}

mkdir -p /etc/ecs
grep -q '^ECS_CLUSTER=' /etc/ecs/ecs.config 2>/dev/null || echo "ECS_CLUSTER=${ECS_CLUSTER}" >> /etc/ecs/ecs.config

# A policy written before the install is kept; dpkg installs the packaged
# conffile beside it as config.yaml.dpkg-dist, without asking (no terminal).
if [ -n "$ECS_REMEDIATOR_POLICY" ]; then
  mkdir -p /etc/ecs-remediator
  printf '%s\n' "$ECS_REMEDIATOR_POLICY" > /etc/ecs-remediator/config.yaml
fi

deb_file=/tmp/ecs-remediator.deb
case "$deb_src" in
  s3://*) aws s3 cp --only-show-errors "$deb_src" "$deb_file" ;;
  https://*|http://*) curl -fsSL -o "$deb_file" "$deb_src" ;;
  *) deb_file=$deb_src ;;
esac
export DEBIAN_FRONTEND=noninteractive
# iptables-persistent asks whether to save the current rules; answer no:
# ecs-remediator saves them itself.
echo "iptables-persistent iptables-persistent/autosave_v4 boolean false" | debconf-set-selections
echo "iptables-persistent iptables-persistent/autosave_v6 boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -o Dpkg::Options::=--force-confold "$deb_file"

rc=0
ecs-remediator check > /tmp/ecs-remediator-check.txt 2>&1 || rc=$?
if [ "$rc" -ge 2 ]; then
  echo "WARNING: ecs-remediator check failed (exit $rc); the daemon is started anyway:"
  cat /tmp/ecs-remediator-check.txt
fi

# --no-block: user data runs inside cloud-final.service (see al2023-user-data.sh).
systemctl enable --now --no-block ecs-remediator.service
