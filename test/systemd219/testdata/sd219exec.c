/*
 * sd219exec: load the seccomp filters systemd 219 loads for a service, then
 * exec the service's command. Test helper of test/systemd219 (the Go test
 * compiles it with `cc sd219exec.c -lseccomp`); the unit file is parsed on
 * the Go side (unit.go) with systemd 219's rules, this program only resolves
 * names and builds the filters. docs/platforms.md says where each rule of
 * systemd 219 comes from (src/core/execute.c at tag v219: exec_child,
 * apply_address_families, apply_seccomp; src/shared/seccomp-util.c).
 *
 *   sd219exec resolve NAME...
 *       one line "NAME NUMBER" per name, NUMBER -1 when libseccomp does not
 *       know the system call on this architecture (systemd 219 then logs
 *       "Failed to parse system call, ignoring" and drops it).
 *
 *   sd219exec exec [options] -- PROGRAM ARGS...
 *       -n          prctl(PR_SET_NO_NEW_PRIVS) first (NoNewPrivileges=yes)
 *       -F w|b      RestrictAddressFamilies= is an allow (w) or deny (b) list
 *       -f N,N,...  its address families (numbers)
 *       -S w|b      SystemCallFilter= is an allow (w) or deny (b) list
 *       -s N,N,...  its system calls (numbers, already resolved)
 *       -e ERRNO    SystemCallErrorNumber= (0 or absent: kill)
 *       -A N,N,...  SystemCallArchitectures= (libseccomp arch tokens; 0 = native)
 *       -a          SystemCallArchitectures= was set (even if empty of known names)
 *   Order and conditions are 219's: no_new_privs, then the address family
 *   filter when it is an allow list or non-empty, then the system call filter
 *   when it is an allow list, non-empty, or architectures were given.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXN 1024

static int parse_list(const char *s, long *out) {
	int n = 0;
	char *copy = strdup(s), *save = NULL, *tok;
	for (tok = strtok_r(copy, ",", &save); tok && n < MAXN; tok = strtok_r(NULL, ",", &save))
		out[n++] = strtol(tok, NULL, 10);
	free(copy);
	return n;
}

/* x86: systemd 219 adds x86, x86-64 and x32 when no architecture is given. */
static int add_secondary_archs(scmp_filter_ctx ctx) {
#if defined(__i386__) || defined(__x86_64__)
	uint32_t archs[] = {SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32};
	for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
		int r = seccomp_arch_add(ctx, archs[i]);
		if (r < 0 && r != -EEXIST)
			return r;
	}
#else
	(void)ctx;
#endif
	return 0;
}

static int load_af_filter(int allow, long *afs, int n) {
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;
	if (!ctx)
		return -ENOMEM;
	if ((r = add_secondary_archs(ctx)) < 0)
		goto out;
	if (allow) {
		long first = 0, last = 0;
		for (int i = 0; i < n; i++) {
			if (afs[i] <= 0 || afs[i] >= AF_MAX)
				continue;
			if (first == 0 || afs[i] < first)
				first = afs[i];
			if (last == 0 || afs[i] > last)
				last = afs[i];
		}
		if (first == 0) {
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 0);
			if (r < 0)
				goto out;
		} else {
			if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 1,
			                          SCMP_A0(SCMP_CMP_LT, first))) < 0)
				goto out;
			if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 1,
			                          SCMP_A0(SCMP_CMP_GT, last))) < 0)
				goto out;
			for (long af = 1; af < AF_MAX; af++) {
				int listed = 0;
				for (int i = 0; i < n; i++)
					listed |= afs[i] == af;
				if (listed)
					continue;
				if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 1,
				                          SCMP_A0(SCMP_CMP_EQ, af))) < 0)
					goto out;
			}
		}
	} else {
		for (int i = 0; i < n; i++)
			if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 1,
			                          SCMP_A0(SCMP_CMP_EQ, afs[i]))) < 0)
				goto out;
	}
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}

static int load_syscall_filter(int allow, long *calls, int n, int err, int archs_set, long *archs, int narchs) {
	uint32_t deny = err == 0 ? SCMP_ACT_KILL : SCMP_ACT_ERRNO(err);
	scmp_filter_ctx ctx = seccomp_init(allow ? deny : SCMP_ACT_ALLOW);
	int r = 0;
	if (!ctx)
		return -ENOMEM;
	if (archs_set) {
		for (int i = 0; i < narchs; i++) {
			r = seccomp_arch_add(ctx, (uint32_t)archs[i]);
			if (r == -EEXIST)
				continue;
			if (r < 0)
				goto out;
		}
	} else if ((r = add_secondary_archs(ctx)) < 0)
		goto out;
	for (int i = 0; i < n; i++)
		if ((r = seccomp_rule_add(ctx, allow ? SCMP_ACT_ALLOW : deny, (int)calls[i], 0)) < 0)
			goto out;
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r;
}

int main(int argc, char **argv) {
	static long afs[MAXN], calls[MAXN], archs[MAXN];
	int nafs = 0, ncalls = 0, narchs = 0, af_mode = -1, sc_mode = -1, err = 0, nnp = 0, archs_set = 0, i, r;

	if (argc >= 2 && strcmp(argv[1], "resolve") == 0) {
		for (i = 2; i < argc; i++)
			printf("%s %d\n", argv[i], seccomp_syscall_resolve_name(argv[i]));
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "exec") != 0) {
		fprintf(stderr, "usage: sd219exec resolve NAME... | sd219exec exec [options] -- PROGRAM ARGS...\n");
		return 2;
	}
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(o, "-n"))
			nnp = 1;
		else if (!strcmp(o, "-a"))
			archs_set = 1;
		else if (!strcmp(o, "-F"))
			af_mode = v[0] == 'w', i++;
		else if (!strcmp(o, "-f"))
			nafs = parse_list(v, afs), i++;
		else if (!strcmp(o, "-S"))
			sc_mode = v[0] == 'w', i++;
		else if (!strcmp(o, "-s"))
			ncalls = parse_list(v, calls), i++;
		else if (!strcmp(o, "-e"))
			err = atoi(v), i++;
		else if (!strcmp(o, "-A"))
			narchs = parse_list(v, archs), archs_set = 1, i++;
		else {
			fprintf(stderr, "sd219exec: unknown option %s\n", o);
			return 2;
		}
	}
	if (i >= argc - 1) {
		fprintf(stderr, "sd219exec: no program after --\n");
		return 2;
	}
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("sd219exec: PR_SET_NO_NEW_PRIVS");
		return 3;
	}
	if (af_mode == 1 || (af_mode == 0 && nafs > 0)) {
		if ((r = load_af_filter(af_mode, afs, nafs)) < 0) {
			fprintf(stderr, "sd219exec: address family filter: %s\n", strerror(-r));
			return 3;
		}
	}
	if (sc_mode == 1 || (sc_mode == 0 && ncalls > 0) || archs_set) {
		if ((r = load_syscall_filter(sc_mode == 1, calls, ncalls, err, archs_set, archs, narchs)) < 0) {
			fprintf(stderr, "sd219exec: system call filter: %s\n", strerror(-r));
			return 3;
		}
	}
	execvp(argv[i + 1], argv + i + 1);
	/* Under an allow list without execve this is where 219's service dies. */
	fprintf(stderr, "sd219exec: exec %s: %s\n", argv[i + 1], strerror(errno));
	return 127;
}
