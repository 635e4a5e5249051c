# Packer snippet: bake ecs-remediator into an ECS AMI (Amazon Linux 2023).
# Add the variable and the provisioners to your build; the RPM comes from
# `make rpm` (dist/ecs-remediator-VERSION-RELEASE.ARCH.rpm).
#
# The unit is enabled, not started: nothing should run or be repaired on the
# build instance. On each instance launched from the AMI it starts at boot,
# before ecs.service, and repairs before the agent reads ecs.config.

variable "ecs_remediator_rpm" {
  type        = string
  description = "Path to the ecs-remediator RPM for the AMI's architecture (dist/ from make rpm)."
  default     = "dist/ecs-remediator-0.1.0-1.x86_64.rpm"
}

variable "ecs_remediator_policy" {
  type        = string
  description = "Optional path to a policy file baked as /etc/ecs-remediator/config.yaml; empty keeps the packaged defaults."
  default     = ""
}

build {
  # sources = ["source.amazon-ebs.ecs"]   # your source block

  provisioner "file" {
    source      = var.ecs_remediator_rpm
    destination = "/tmp/ecs-remediator.rpm"
  }

  provisioner "file" {
    # Uploads an empty placeholder when no policy is given.
    content     = var.ecs_remediator_policy == "" ? "" : file(var.ecs_remediator_policy)
    destination = "/tmp/ecs-remediator-policy.yaml"
  }

  provisioner "shell" {
    inline = [
      "set -eu",
      # A policy placed before the install is kept (%config(noreplace)).
      "if [ -s /tmp/ecs-remediator-policy.yaml ]; then sudo install -D -m 0644 /tmp/ecs-remediator-policy.yaml /etc/ecs-remediator/config.yaml; fi",
      "sudo dnf install -y /tmp/ecs-remediator.rpm",
      # Fails the bake on a bad policy file (exit 2); 0/1 = compliant/drift.
      "sudo ecs-remediator check >/dev/null || [ $? -eq 1 ]",
      # Enable only: no --now at bake time.
      "sudo systemctl enable ecs-remediator.service",
      "rm -f /tmp/ecs-remediator.rpm /tmp/ecs-remediator-policy.yaml",
    ]
  }
}
