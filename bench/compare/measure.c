/* Runs one client process and records what the comparison needs about it:
 *
 *     measure OUT TIMEOUT_S NICE COMMAND [ARGS...]
 *
 * writes one line to OUT: start (Unix time taken just before the fork, to compare with a
 * server-side timestamp of the first request), wall seconds, user and system CPU seconds,
 * peak RSS in KiB, exit code (128 + signal if killed).
 *
 * Why not GNU time: it prints CPU in hundredths of a second, too coarse for a few seconds
 * of a cheap client. Why not a Python wrapper: a child forked from Python carries the
 * interpreter's ~10 MiB into its own peak RSS until exec, which would dwarf wrk's 5 MiB.
 * This launcher is small, so what wait4() reports is the client's own.
 * After TIMEOUT_S the child gets SIGTERM, 5 s later SIGKILL: a hung client cannot hold
 * the benchmark up.
 *
 * NICE (e.g. -10; 0 leaves priority alone): the child starts a session of its own and sets
 * that session's autogroup nice value. With autogroups (Debian's default), a plain nice
 * value only ranks processes within one session, and every other session on a shared
 * machine (a build, a fuzzer) gets an equal share of the CPU however it is niced; the
 * client would then measure its neighbours as much as itself. Being in its own session,
 * the child no longer gets the terminal's Ctrl-C: it is forwarded from here as SIGTERM,
 * and once the child is gone this process dies of the same signal, so that the shell
 * running the benchmark stops too (a shell goes on after a child that exits normally).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;
static int terminated;
static volatile sig_atomic_t interrupted;

static void on_alarm(int sig) {
    (void)sig;
    kill(child, terminated ? SIGKILL : SIGTERM);
    terminated = 1;
    alarm(5);
}

static void forward(int sig) {
    interrupted = sig;
    kill(child, SIGTERM);
}

static void raise_priority(int nice_value) {
    if (nice_value == 0) return;
    setsid();
    FILE* f = fopen("/proc/self/autogroup", "w");
    if (f) {
        fprintf(f, "%d\n", nice_value);
        fclose(f);
    }
    setpriority(PRIO_PROCESS, 0, nice_value);
}

static double seconds(struct timespec t) {
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static double tv(struct timeval t) {
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s OUT TIMEOUT_S NICE COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    struct timespec start, t0, t1;
    clock_gettime(CLOCK_REALTIME, &start);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    child = fork();
    if (child < 0) return perror("fork"), 2;
    if (child == 0) {
        raise_priority(atoi(argv[3]));
        execvp(argv[4], argv + 4);
        perror(argv[4]);
        _exit(127);
    }
    signal(SIGALRM, on_alarm);
    signal(SIGINT, forward);
    signal(SIGTERM, forward);
    alarm((unsigned)atoi(argv[2]));
    int status = 0;
    struct rusage ru;
    while (wait4(child, &status, 0, &ru) < 0)
        if (errno != EINTR) return perror("wait4"), 2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (terminated) fprintf(stderr, "measure: the client ran past %s s and was stopped\n", argv[2]);
    FILE* out = fopen(argv[1], "w");
    if (!out) return perror(argv[1]), 2;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(out, "%.6f %.6f %.6f %.6f %ld %d\n", seconds(start), seconds(t1) - seconds(t0), tv(ru.ru_utime),
            tv(ru.ru_stime), ru.ru_maxrss, code);
    int failed = fclose(out) != 0;
    if (interrupted) {
        signal(interrupted, SIG_DFL);
        raise(interrupted);
    }
    return failed ? 2 : 0;
}
