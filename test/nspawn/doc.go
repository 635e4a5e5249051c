// Package nspawn boots a real Debian userland with systemd, journald and the
// system bus in a systemd-nspawn container, for the end-to-end tests. It is
// for tests only.
//
// Rootfs builds a Debian bookworm tree with debootstrap once and caches it
// under $ECS_REMEDIATOR_E2E_CACHE (default /var/cache/ecs-remediator-e2e);
// NewRoot gives each test a fresh copy; Boot starts systemd on it in a
// private network namespace and finds the container's PID 1, which every
// Exec enters with nsenter. Nothing here touches the host's /etc, its
// network namespace or its services, and systemd is never booted on the
// host's root file system. Tests skip with a message when this machine
// cannot boot a container (not root, tools missing), and fail instead when
// ECS_REMEDIATOR_REQUIRE_NS=1 (CI).
package nspawn
