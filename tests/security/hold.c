/* Kernel-object hog run inside a sandbox by tests/security/test_kernel_objects.py:
 * `hold <object> [most]` allocates objects of one class until the kernel refuses (or `most` are
 * held), prints "held <count> <errno name of the refusal, or OK>" and keeps them until killed.
 *
 *   ptys    pseudo-terminals (open /dev/ptmx)
 *   aio     Linux AIO contexts of 4096 events each (io_setup)
 *   files   open files: forks until the pids limit stops it, each process opening /dev/null up
 *           to its RLIMIT_NOFILE hard limit; prints "held <files> <errno> procs <n> <fork errno>"
 *   inodes  empty files in the directory /hold-inodes (not kept open; they stay on disk)
 *   pipes   pipes, with RLIMIT_NOFILE raised to its hard limit; prints "held <pipes> <errno> size <n>",
 *           n the buffer size (F_GETPIPE_SZ) of the last one: the kernel shrinks a new pipe to two
 *           pages once its owner's uid holds more than fs.pipe-user-pages-soft pages of pipe buffers
 *   inotify  inotify instances (inotify_init1)
 *   watches  inotify watches: instance after instance, each watching the same WATCHED_FILES empty
 *            files (made as needed in the directory /hold-watches), since an instance watches an
 *            inode once
 *   mqueue   POSIX message queues of the default size, never unlinked (they outlive the process,
 *            in its IPC namespace); prints "held <queues> <errno> bytes <n>", n their messages' bytes
 *   signals  queued real-time signals: SIGRTMIN blocked, sigqueue'd to itself (they stay pending)
 *   timers   POSIX timers (timer_create, not armed: each has its signal allocated in advance)
 *   fds     descriptors in flight: a descriptor of /dev/null sent SCM_MAX_FD times a message over
 *           unix stream socketpairs never read (a new pair when one's buffer is full), with
 *           RLIMIT_NOFILE raised to its hard limit; the count is what the sender's uid has in flight
 *   epoll   epoll watches, added by a child process (the OOM killer's first choice in the sandbox,
 *           and ended with this one): each epoll instance watches each of a quarter of RLIMIT_NOFILE
 *           eventfds through each descriptor of the upper half (a watch is one file through one
 *           descriptor, and stays while the file is open); the errno is KILLED if the child was
 *           killed (by the OOM killer) before it was refused
 * The inotify, mqueue, signals and timers modes count against per-user counters of the kernel
 * (inotify's in /proc/sys/user, then RLIMIT_MSGQUEUE and RLIMIT_SIGPENDING), charged at each level
 * of user namespaces; pipes, fds and epoll against counts kept per host uid alone.
 *
 * Exit status: 0 after printing with "inodes" or "most" reached, else it waits; 2 on a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLED (-1) /* not an errno: the process holding the objects was killed */

static const char *name(int err) {
    if (err == KILLED) return "KILLED";
    return err ? (strerrorname_np(err) ? strerrorname_np(err) : "?") : "OK";
}

static long most = -1; /* no limit */

/* What an abuser does first; returns the new limit. */
static long raise_nofile(void) {
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    return (long)limit.rlim_cur;
}

static int hold_ptys(long *count) {
    for (*count = 0; *count != most; (*count)++)
        if (open("/dev/ptmx", O_RDWR | O_NOCTTY) < 0) return errno;
    return 0;
}

static int hold_aio(long *count) {
    for (*count = 0; *count != most; (*count)++) {
        aio_context_t ctx = 0;
        if (syscall(SYS_io_setup, 4096, &ctx) < 0) return errno;
    }
    return 0;
}

static int hold_inodes(long *count) {
    char path[64];
    if (mkdir("/hold-inodes", 0755) < 0 && errno != EEXIST) return errno;
    for (*count = 0; *count != most; (*count)++) {
        snprintf(path, sizeof path, "/hold-inodes/%ld", *count);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) return errno;
        close(fd);
    }
    return 0;
}

static int last_pipe_size;

static int hold_pipes(long *count) {
    raise_nofile();
    for (*count = 0; *count != most; (*count)++) {
        int ends[2];
        if (pipe(ends) < 0) return errno;
        last_pipe_size = fcntl(ends[0], F_GETPIPE_SZ);
    }
    return 0;
}

static int hold_inotify(long *count) {
    for (*count = 0; *count != most; (*count)++)
        if (inotify_init1(IN_CLOEXEC) < 0) return errno;
    return 0;
}

#define WATCHED_FILES 16384

static int hold_watches(long *count) {
    char path[64];
    if (mkdir("/hold-watches", 0755) < 0 && errno != EEXIST) return errno;
    for (*count = 0;;) {
        int group = inotify_init1(IN_CLOEXEC);
        if (group < 0) return errno;
        for (int file = 0; file < WATCHED_FILES; file++, (*count)++) {
            if (*count == most) return 0;
            snprintf(path, sizeof path, "/hold-watches/%d", file);
            if (*count < WATCHED_FILES) {
                int fd = open(path, O_WRONLY | O_CREAT, 0644);
                if (fd < 0) return errno;
                close(fd);
            }
            if (inotify_add_watch(group, path, IN_MODIFY) < 0) return errno;
        }
    }
}

static long queue_bytes;

static int hold_mqueue(long *count) {
    char path[64];
    for (*count = 0; *count != most; (*count)++) {
        struct mq_attr attr;
        snprintf(path, sizeof path, "/hold-%d-%ld", (int)getpid(), *count);
        mqd_t queue = mq_open(path, O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
        if (queue < 0) return errno;
        mq_getattr(queue, &attr);
        queue_bytes += attr.mq_maxmsg * attr.mq_msgsize;
    }
    return 0;
}

static void block_rt_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static int hold_signals(long *count) {
    block_rt_signal();
    for (*count = 0; *count != most; (*count)++)
        if (sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 0}) < 0) return errno;
    return 0;
}

static int hold_timers(long *count) {
    block_rt_signal();
    struct sigevent event = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    for (*count = 0; *count != most; (*count)++) {
        timer_t timer;
        if (timer_create(CLOCK_MONOTONIC, &event, &timer) < 0) return errno;
    }
    return 0;
}

#define SCM_MAX_FD 253 /* the kernel's most descriptors in one message */

static int hold_fds(long *count) {
    raise_nofile();
    int sent = open("/dev/null", O_RDONLY), ends[2] = {-1, -1}, copies[SCM_MAX_FD];
    if (sent < 0) return errno;
    for (int i = 0; i < SCM_MAX_FD; i++) copies[i] = sent;
    char byte = 0, control[CMSG_SPACE(sizeof copies)];
    struct iovec data = {.iov_base = &byte, .iov_len = 1};
    for (*count = 0; *count != most;) {
        int n = most < 0 || most - *count > SCM_MAX_FD ? SCM_MAX_FD : (int)(most - *count);
        if (ends[0] < 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, ends) < 0) return errno;
        struct msghdr message = {
            .msg_iov = &data, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(n * sizeof(int))};
        struct cmsghdr *rights = CMSG_FIRSTHDR(&message);
        rights->cmsg_level = SOL_SOCKET;
        rights->cmsg_type = SCM_RIGHTS;
        rights->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(rights), copies, n * sizeof(int));
        if (sendmsg(ends[0], &message, MSG_DONTWAIT) == 1)
            *count += n;
        else if (errno == EAGAIN)
            ends[0] = -1; /* this pair's buffer is full: keep it, open another */
        else
            return errno;
    }
    return 0;
}

/* Adds watches until refused or ``most`` are added, counting them in *added; needs no memory of
 * its own beyond the kernel's, so that the sandbox's memory limit is reached by watches alone. */
static int add_watches(long *added) {
    long files = raise_nofile(), first_slot = files / 2;
    int targets[files / 4];
    for (long t = 0; t < files / 4; t++)
        if ((targets[t] = eventfd(0, EFD_CLOEXEC)) < 0) return errno;
    for (;;) {
        int instance = epoll_create1(EPOLL_CLOEXEC);
        if (instance < 0) return errno;
        for (long t = 0; t < files / 4; t++)
            for (long slot = first_slot; slot < files; slot++) {
                if (*added == most) return 0;
                struct epoll_event event = {.events = EPOLLIN};
                if (dup2(targets[t], slot) < 0 || epoll_ctl(instance, EPOLL_CTL_ADD, slot, &event) < 0) return errno;
                (*added)++;
            }
    }
}

static int hold_epoll(long *count) {
    long *added = mmap(NULL, sizeof *added, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int report[2], err, status;
    if (added == MAP_FAILED || pipe(report) < 0) return errno;
    pid_t child = fork();
    if (child < 0) return errno;
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int adjust = open("/proc/self/oom_score_adj", O_WRONLY);
        dprintf(adjust, "1000\n");
        close(adjust);
        close(report[0]);
        err = add_watches(added);
        write(report[1], &err, sizeof err);
        pause();
        _exit(0);
    }
    close(report[1]);
    ssize_t got = read(report[0], &err, sizeof err);
    *count = *added;
    if (got == sizeof err) return err;
    waitpid(child, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? KILLED : ECHILD;
}

static int open_all(long *count) {
    raise_nofile();
    for (*count = 0;; (*count)++)
        if (open("/dev/null", O_RDONLY) < 0) return errno;
}

/* Each child opens all it may, reports "<count> <errno>" on the pipe and sleeps holding them. */
static void hold_files(void) {
    int report[2];
    if (pipe(report) < 0) exit(2);
    long procs = 0, total = 0, count;
    int fork_err = 0, open_err = 0;
    for (; procs != most; procs++) {
        pid_t pid = fork();
        if (pid < 0) {
            fork_err = errno;
            break;
        }
        if (pid == 0) {
            close(report[0]);
            int err = open_all(&count);
            dprintf(report[1], "%ld %d\n", count, err);
            close(report[1]);
            pause();
            _exit(0);
        }
    }
    close(report[1]);
    FILE *in = fdopen(report[0], "r");
    int err;
    while (fscanf(in, "%ld %d", &count, &err) == 2) {
        total += count;
        open_err = err;
    }
    printf("held %ld %s procs %ld %s\n", total, name(open_err), procs, name(fork_err));
    fflush(stdout);
    pause(); /* the children are killed with this process's group */
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (argc > 2) most = atol(argv[2]);
    if (strcmp(argv[1], "files") == 0) {
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN);
        hold_files();
        return 0;
    }
    static const struct {
        const char *name;
        int (*hold)(long *count);
    } modes[] = {
        {"ptys", hold_ptys},       {"aio", hold_aio},         {"inodes", hold_inodes},
        {"pipes", hold_pipes},     {"inotify", hold_inotify}, {"watches", hold_watches},
        {"mqueue", hold_mqueue},   {"signals", hold_signals}, {"timers", hold_timers},
        {"fds", hold_fds},         {"epoll", hold_epoll},
    };
    size_t mode = 0;
    while (mode < sizeof modes / sizeof modes[0] && strcmp(argv[1], modes[mode].name) != 0) mode++;
    if (mode == sizeof modes / sizeof modes[0]) return 2;
    long count = 0;
    int err = modes[mode].hold(&count);
    if (strcmp(argv[1], "pipes") == 0)
        printf("held %ld %s size %d\n", count, name(err), last_pipe_size);
    else if (strcmp(argv[1], "mqueue") == 0)
        printf("held %ld %s bytes %ld\n", count, name(err), queue_bytes);
    else
        printf("held %ld %s\n", count, name(err));
    fflush(stdout);
    if (strcmp(argv[1], "inodes") == 0 || count == most) return 0;
    pause();
    return 0;
}
