/* SPDX-License-Identifier: MIT */
/*
 * maxrss: run a command and write its peak resident set size, in KiB
 * (getrusage's ru_maxrss of the child, as `time -v` reports it), to a
 * file.  Used by t0016-stream-bounds.sh to check that a hostile stream
 * costs its reader no memory beyond what it admitted.
 *
 *   maxrss OUTFILE COMMAND [ARG...]
 *
 * Exits with the command's status (128 + N if it died of signal N), or
 * 125 if it could not be run.  stdin, stdout and stderr are the
 * command's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct rusage ru;
    FILE *f;
    pid_t pid;
    int status;

    if ( argc < 3 )
    {
        fprintf(stderr, "usage: maxrss OUTFILE COMMAND [ARG...]\n");
        return 125;
    }
    pid = fork();
    if ( pid < 0 )
    {
        perror("maxrss: fork");
        return 125;
    }
    if ( pid == 0 )
    {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "maxrss: %s: %s\n", argv[2], strerror(errno));
        _exit(125);
    }
    while ( wait4(pid, &status, 0, &ru) < 0 )
        if ( errno != EINTR )
        {
            perror("maxrss: wait4");
            return 125;
        }
    f = fopen(argv[1], "w");
    if ( !f || fprintf(f, "%ld\n", ru.ru_maxrss) < 0 || fclose(f) )
    {
        fprintf(stderr, "maxrss: %s: %s\n", argv[1], strerror(errno));
        return 125;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}
