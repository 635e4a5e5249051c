// Package e2e is the end-to-end suite: the ecs-remediator RPM, built from
// packaging/nfpm.yaml as `make rpm` builds it, installed with rpm in a booted
// Debian systemd container (test/nspawn), next to a stand-in ECS agent
// (test/e2e/credclient). It checks what only a real boot shows: unit
// ordering, the agent restart policy over D-Bus, journald fields and the
// catalog, persistence across reboot, a real SDK client reaching
// 169.254.170.2, upgrade and erase, and the watchdog.
//
// Run it with `make e2e` (as root). It never touches the host: everything
// happens inside the container's own root, PID 1 and network namespace.
package e2e
