/* Escape probe run inside a sandbox by tests/security: `probe <attempt>` tries one thing a
 * hostile visitor would try and prints "ALLOWED" or "DENIED <errno name>".
 * Exit status: 0 when the attempt was denied, 1 when it succeeded, 2 on a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int report(long result) {
    if (result >= 0) {
        printf("ALLOWED\n");
        return 1;
    }
    printf("DENIED %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 0;
}

static long chroot_escape(void) {
    /* The classic double-chroot breakout: chroot into a subdirectory while keeping a cwd
     * outside it, climb, chroot again. Success means the real root differs afterwards. */
    struct stat before, after;
    if (stat("/", &before) < 0) return -1;
    mkdir("/tmp/.escape", 0700);
    if (chroot("/tmp/.escape") < 0) return -1;
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") < 0) return -1;
    if (stat("/", &after) < 0) return -1;
    if (before.st_dev == after.st_dev && before.st_ino == after.st_ino) {
        errno = EPERM; /* still inside: the breakout failed */
        return -1;
    }
    return 0;
}

static long tiocsti_foreign(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return -1;
    grantpt(master);
    unlockpt(master);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0) return -1;
    char c = 'x';
    return ioctl(slave, TIOCSTI, &c); /* not our controlling terminal */
}

/* Give eth0 another address (to impersonate a neighbour or the gateway). */
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *a = argv[1];
    char handle[128] = {0};
    int mount_id;
    if (!strcmp(a, "keyctl")) return report(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "probe"));
    if (!strcmp(a, "add_key")) return report(syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_SESSION_KEYRING));
    if (!strcmp(a, "bpf")) return report(syscall(SYS_bpf, 0, NULL, 0));
    if (!strcmp(a, "init_module")) return report(syscall(SYS_init_module, "", 0, ""));
    if (!strcmp(a, "finit_module")) return report(syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(a, "kexec_load")) return report(syscall(SYS_kexec_load, 0, 0, NULL, 0));
    if (!strcmp(a, "mount")) return report(mount("none", "/mnt", "tmpfs", 0, NULL));
    if (!strcmp(a, "umount")) return report(umount2("/proc", MNT_DETACH));
    if (!strcmp(a, "pivot_root")) return report(syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (!strcmp(a, "unshare_user")) return report(unshare(CLONE_NEWUSER));
    if (!strcmp(a, "unshare_mount")) return report(unshare(CLONE_NEWNS));
    if (!strcmp(a, "setns")) {
        int fd = open("/proc/self/ns/uts", O_RDONLY);
        return report(fd < 0 ? -1 : setns(fd, 0));
    }
    if (!strcmp(a, "userfaultfd")) return report(syscall(SYS_userfaultfd, 0));
    if (!strcmp(a, "perf_event_open")) {
        char attr[128] = {0};
        *(unsigned *)(attr + 4) = sizeof attr; /* size */
        return report(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(a, "io_uring_setup")) {
        char params[120] = {0};
        return report(syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(a, "reboot")) return report(reboot(RB_POWER_OFF));
    if (!strcmp(a, "swapon")) return report(syscall(SYS_swapon, "/dev/null", 0));
    if (!strcmp(a, "clock_settime")) {
        struct timespec t = {0, 0};
        return report(clock_settime(CLOCK_REALTIME, &t));
    }
    if (!strcmp(a, "open_by_handle_at")) {
        struct file_handle *h = (struct file_handle *)handle;
        h->handle_bytes = sizeof handle - sizeof *h;
        if (name_to_handle_at(AT_FDCWD, "/", h, &mount_id, 0) < 0) return report(-1);
        return report(open_by_handle_at(AT_FDCWD, h, O_RDONLY));
    }
    if (!strcmp(a, "mknod_block")) return report(mknod("/tmp/.sda", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(a, "ptrace_init")) return report(ptrace(PTRACE_ATTACH, 1, 0, 0));
    if (!strcmp(a, "chroot_escape")) return report(chroot_escape());
    if (!strcmp(a, "tiocsti_foreign")) return report(tiocsti_foreign());
    if (!strcmp(a, "syslog")) return report(syscall(SYS_syslog, 3, handle, sizeof handle));
    if (!strcmp(a, "acct")) return report(acct("/tmp/.acct"));
    if (!strcmp(a, "raw_socket")) return report(socket(AF_INET, SOCK_RAW, IPPROTO_RAW));
    if (!strcmp(a, "packet_socket")) return report(socket(AF_PACKET, SOCK_RAW, htons(0x0003)));
    fprintf(stderr, "unknown attempt %s\n", a);
    return 2;
}
