/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for saverestore/sr-io-file.c: the atomic save file's aligned
 * O_DIRECT writer.
 *
 * Whatever the record sizes, the committed file must hold exactly the
 * bytes written, no padding, with O_DIRECT where the filesystem has it
 * and buffered writes where it refuses it (ramfs, mounted in a private
 * user and mount namespace).  A sync part way must leave the file exactly
 * as long as the stream so far, and later bytes must still land.  A
 * write the filesystem cuts short (a file-size limit, a full tmpfs) must
 * fail the commit with a message naming the file offset, keep the old
 * file and leave no temporary file behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sr.h"
#include "sr-private.h"

#define MiB (1U << 20)

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Remove a test's file and directory (unmounted first if mounted). */
static void remove_test_dir(char *dir, const char *path, bool mounted)
{
    unlink(path);
    if ( mounted )
        ASSERT_EQ(umount(dir), 0);
    rmdir(dir);
    free(dir);
}

/* Bytes that differ at every offset, so a misplaced block shows. */
static uint8_t *pattern(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len);
    uint32_t x = seed | 1;

    ASSERT(p);
    for ( size_t i = 0; i < len; i++ )
    {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = x;
    }
    return p;
}

/* path holds exactly len bytes, equal to want. */
static void expect_bytes(const char *path, const uint8_t *want, size_t len)
{
    struct stat st;
    uint8_t *got = malloc(len + 1);
    size_t done = 0;
    int fd = open(path, O_RDONLY);

    ASSERT(got);
    ASSERT(fd >= 0);
    ASSERT_EQ(fstat(fd, &st), 0);
    ASSERT_EQ((uint64_t)st.st_size, (uint64_t)len);
    while ( done < len )
    {
        ssize_t n = read(fd, got + done, len - done);

        ASSERT(n > 0);
        done += n;
    }
    close(fd);
    ASSERT(!memcmp(got, want, len));
    free(got);
}

/* After a failed commit: the old file ("good") is still there, alone. */
static void expect_old_file(const char *dir, const char *path)
{
    expect_bytes(path, (const uint8_t *)"good", 4);
    ASSERT_EQ(test_dir_entries(dir), 1);
}

/*
 * Record-like pieces of odd sizes: a byte, a header, a page and one more,
 * a page-data batch and three: they cross blocks and staging buffers at
 * every alignment.
 */
static const size_t odd_sizes[] = {
    1, 8, 4095, 4097, 24, 4 * MiB + 3, 7, 4096, 1023 * 4096 + 16, 5,
    8 * MiB - 1, 33, 3 * MiB + 4096 * 3 + 9,
};

static size_t write_odd(struct sr_io *io, const uint8_t *data)
{
    size_t off = 0;

    for ( size_t i = 0; i < sizeof(odd_sizes) / sizeof(odd_sizes[0]); i++ )
    {
        ASSERT_EQ(sr_io_write(io, data + off, odd_sizes[i]), 0);
        off += odd_sizes[i];
    }
    return off;
}

static size_t odd_total(void)
{
    size_t total = 0;

    for ( size_t i = 0; i < sizeof(odd_sizes) / sizeof(odd_sizes[0]); i++ )
        total += odd_sizes[i];
    return total;
}

/*
 * Write the odd sizes passes times over, stopping at the first error the
 * writer reports; returns it (or 0).
 */
static int write_odd_until_error(struct sr_io *io, const uint8_t *data,
                                 int passes)
{
    int rc = 0;

    for ( int pass = 0; pass < passes && !rc; pass++ )
        for ( size_t i = 0, off = 0;
              !rc && i < sizeof(odd_sizes) / sizeof(odd_sizes[0]); i++ )
        {
            rc = sr_io_write(io, data + off, odd_sizes[i]);
            off += odd_sizes[i];
        }
    return rc;
}

static void write_text(const char *path, const char *text)
{
    struct sr_io *io;

    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    ASSERT_EQ(sr_io_write(io, text, strlen(text)), 0);
    ASSERT_EQ(sr_io_commit(io), 0);
}

static void put_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);

    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/*
 * A private user and mount namespace with fstype (opts) mounted on dir,
 * so a test can use a filesystem it may not mount on the host.  False
 * where this kernel or sandbox allows no user namespaces, or where the
 * process has threads (TSan's runtime starts one; unshare() then fails
 * with EINVAL), so those tests are skipped under TSan.
 */
static bool private_mount(const char *dir, const char *fstype,
                          const char *opts)
{
    char map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();

    if ( unshare(CLONE_NEWUSER | CLONE_NEWNS) )
    {
        DIAG("unshare: %s", strerror(errno));
        return false;
    }
    put_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
    put_file("/proc/self/uid_map", map);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
    put_file("/proc/self/gid_map", map);
    /* Nothing mounted here may reach the host's namespace. */
    ASSERT_EQ(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    return !mount("none", dir, fstype, 0, opts);
}

/* ---------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------- */

/* Read path back through an owned fd in odd sizes; expect data, then end. */
static struct sr_io *read_back(const char *path, off_t start,
                               const uint8_t *data, size_t total)
{
    uint8_t *got = malloc(total + 1), byte;
    struct sr_io *io;
    size_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ASSERT(got);
    ASSERT(fd >= 0);
    ASSERT_EQ(lseek(fd, start, SEEK_SET), start);
    ASSERT_EQ(sr_io_open_fd(&io, fd, true), 0);
    for ( size_t i = 0; off < total; i++ )
    {
        size_t n = odd_sizes[i % (sizeof(odd_sizes) / sizeof(odd_sizes[0]))];

        if ( n > total - off )
            n = total - off;
        ASSERT_EQ(sr_io_read(io, got + off, n), 0);
        off += n;
    }
    ASSERT(!memcmp(got, data, total));
    free(got);
    /* The end is the end, however often it is asked for. */
    ASSERT_EQ(sr__io_read_eof(io, &byte, 1), -ENODATA);
    ASSERT_EQ(sr__io_read_eof(io, &byte, 1), -ENODATA);
    return io;
}

/* A plain (buffered) file of data. */
static void put_bytes(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    size_t done = 0;

    ASSERT(fd >= 0);
    while ( done < len )
    {
        ssize_t n = write(fd, data + done, len - done);

        ASSERT(n > 0);
        done += n;
    }
    ASSERT_EQ(fdatasync(fd), 0);
    close(fd);
}

/* The same, then out of the page cache (our own file only): read cold. */
static void put_cold(const char *path, const uint8_t *data, size_t len)
{
    int fd;

    put_bytes(path, data, len);
    fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

/* ---------------------------------------------------------------------
 * Tests
 * --------------------------------------------------------------------- */

TEST(odd_record_sizes_commit_exact_bytes_with_o_direct)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total();
    uint8_t *data = pattern(total, 11);
    struct sr_io *io;

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    /* The test directory's filesystem (ext4, xfs, tmpfs) has O_DIRECT. */
    if ( !sr__io_file_direct(io) )
        DIAG("%s has no O_DIRECT: the buffered path was tested", dir);
    ASSERT_EQ(write_odd(io, data), total);
    ASSERT_EQ(sr_io_offset(io), (uint64_t)total);
    ASSERT_EQ(sr_io_commit(io), 0);
    expect_bytes(path, data, total);
    ASSERT_EQ(test_dir_entries(dir), 1);

    /* A file shorter than one block, and an empty one. */
    write_text(path, "short");
    expect_bytes(path, (const uint8_t *)"short", 5);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    ASSERT_EQ(sr_io_commit(io), 0);
    expect_bytes(path, data, 0);
    ASSERT_EQ(test_dir_entries(dir), 1);

    remove_test_dir(dir, path, false);
    free(data);
}

TEST(sync_part_way_cuts_the_file_exactly_and_later_bytes_land)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256], tmp[300];
    uint8_t *data = pattern(3 * MiB, 5);
    struct sr_io *io;
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    d = opendir(dir);
    ASSERT(d);
    while ( (e = readdir(d)) )
        if ( e->d_name[0] != '.' )
            snprintf(tmp, sizeof(tmp), "%s/%s", dir, e->d_name);
    closedir(d);

    /* Each sync leaves a block partly written, which the next rewrites. */
    ASSERT_EQ(sr_io_write(io, data, 5000), 0);
    ASSERT_EQ(sr_io_sync(io), 0);
    expect_bytes(tmp, data, 5000);
    ASSERT_EQ(sr_io_write(io, data + 5000, 3), 0);
    ASSERT_EQ(sr_io_sync(io), 0);
    expect_bytes(tmp, data, 5003);
    ASSERT_EQ(sr_io_write(io, data + 5003, 2 * MiB + 1), 0);
    ASSERT_EQ(sr_io_sync(io), 0);
    expect_bytes(tmp, data, 2 * MiB + 5004);
    ASSERT_EQ(sr_io_write(io, data + 2 * MiB + 5004, MiB - 5004), 0);
    ASSERT_EQ(sr_io_commit(io), 0);
    expect_bytes(path, data, 3 * MiB);
    ASSERT_EQ(test_dir_entries(dir), 1);

    remove_test_dir(dir, path, false);
    free(data);
}

TEST(compressed_stream_through_the_file_writer_reads_back)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total(), len = 0;
    uint8_t *data = pattern(total, 3), *back = malloc(total);
    struct sr_io *io;
    int fd;

    ASSERT(back);
    snprintf(path, sizeof(path), "%s/dom.save", dir);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    ASSERT_EQ(sr_io_write(io, "head", 4), 0);
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(write_odd(io, data), total);
    ASSERT_EQ(sr_io_commit(io), 0);

    fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(sr_io_open_fd(&io, fd, true), 0);
    ASSERT_EQ(sr_io_read(io, back, 4), 0);
    ASSERT(!memcmp(back, "head", 4));
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    ASSERT_EQ(sr_io_read(io, back, total), 0);
    ASSERT(!memcmp(back, data, total));
    ASSERT_EQ(sr_io_read(io, &len, 1), -ENODATA);
    sr_io_close(io);

    remove_test_dir(dir, path, false);
    free(data);
    free(back);
}

TEST(o_direct_refused_falls_back_to_buffered_writes)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total();
    uint8_t *data = pattern(total + 4, 7);
    struct sr_io *io;
    int fd;

    /* ramfs has no O_DIRECT: open() refuses it with EINVAL. */
    if ( !private_mount(dir, "ramfs", NULL) )
        TEST_SKIP("no private ramfs mount here (user namespaces off?)");
    snprintf(path, sizeof(path), "%s/probe", dir);
    fd = open(path, O_CREAT | O_WRONLY | O_DIRECT, 0600);
    ASSERT_EQ(fd, -1);
    ASSERT_EQ(errno, EINVAL);
    unlink(path);                       /* created before the refusal */

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    ASSERT(!sr__io_file_direct(io));
    ASSERT_EQ(write_odd(io, data), total);
    ASSERT_EQ(sr_io_sync(io), 0);
    ASSERT_NE(access(path, F_OK), 0);   /* not there before the commit */
    ASSERT_EQ(sr_io_write(io, data + total, 4), 0);
    ASSERT_EQ(sr_io_commit(io), 0);
    expect_bytes(path, data, total + 4);
    ASSERT_EQ(test_dir_entries(dir), 1);
    /* Read back: ramfs refuses O_DIRECT for reads too. */
    io = read_back(path, 0, data, total + 4);
    ASSERT_EQ(sr__io_file_direct_reads(io), 0U);
    ASSERT_EQ(sr_io_close(io), 0);

    remove_test_dir(dir, path, true);
    free(data);
}

/*
 * A file-size limit cuts a write short part way through a block (then
 * EFBIG): the commit fails naming the offset, the old file stays and no
 * temporary file is left.  SIGXFSZ is ignored so that the write fails
 * rather than the process dying.
 */
TEST(short_write_fails_commit_keeps_old_file_leaves_no_temp)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    struct rlimit lim = { .rlim_cur = 6 * MiB + 100,
                          .rlim_max = RLIM_INFINITY };
    size_t total = odd_total();
    uint8_t *data = pattern(total, 9);
    struct sr_io *io;

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    write_text(path, "good");
    signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);

    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    /*
     * Writes are queued, so the writer's error shows on a later call:
     * at the latest once the writer has had to free the buffer after the
     * one that failed, i.e. well before 40 MiB.
     */
    ASSERT_EQ(write_odd_until_error(io, data, 2), -EFBIG);
    ASSERT_CONTAINS(sr_io_errmsg(io), "failed at file offset");
    ASSERT_EQ(sr_io_commit(io), -EFBIG);
    expect_old_file(dir, path);

    /* The same at commit time: the last partial block is over the limit. */
    lim.rlim_cur = 3 * MiB + 100;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    ASSERT_EQ(sr_io_write(io, data, 3 * MiB + 200), 0);
    ASSERT_EQ(sr_io_sync(io), -EFBIG);
    ASSERT_CONTAINS(sr_io_errmsg(io), "failed at file offset");
    ASSERT_CONTAINS(sr_io_errmsg(io), ".tmp-");
    ASSERT_CONTAINS(sr_io_errmsg(io), "too large");
    /* Sticky: later calls return the first error. */
    ASSERT_EQ(sr_io_write(io, data, 1), -EFBIG);
    ASSERT_EQ(sr_io_commit(io), -EFBIG);
    expect_old_file(dir, path);

    remove_test_dir(dir, path, false);
    free(data);
}

/* A full filesystem (a 4 MiB tmpfs, with O_DIRECT): ENOSPC, cleanly. */
TEST(full_filesystem_fails_commit_leaves_no_temp)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total();
    uint8_t *data = pattern(total, 13);
    struct sr_io *io;
    int rc;

    if ( !private_mount(dir, "tmpfs", "size=4m") )
        TEST_SKIP("no private tmpfs mount here (user namespaces off?)");
    snprintf(path, sizeof(path), "%s/dom.save", dir);
    write_text(path, "good");

    ASSERT_EQ(sr_io_open_atomic(&io, path), 0);
    rc = write_odd_until_error(io, data, 1);
    ASSERT(rc == 0 || rc == -ENOSPC);
    ASSERT_EQ(sr_io_commit(io), -ENOSPC);
    expect_old_file(dir, path);

    remove_test_dir(dir, path, true);
    free(data);
}

TEST(cold_file_is_read_ahead_with_o_direct)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total();
    uint8_t *data = pattern(total, 17);
    struct sr_io *io;
    int fd;

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    put_cold(path, data, total);
    io = read_back(path, 0, data, total);
    fd = open(path, O_RDONLY | O_DIRECT);
    if ( fd < 0 )
        DIAG("%s has no O_DIRECT: the plain reads were tested", dir);
    else
        ASSERT_EQ(sr__io_file_direct_reads(io),
                  (unsigned int)((total + (4 << 20) - 1) / (4 << 20)));
    close(fd);
    ASSERT_EQ(sr_io_close(io), 0);

    /* Cached now (read again buffered): no chunk needs O_DIRECT. */
    fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    for ( uint8_t buf[65536]; read(fd, buf, sizeof(buf)) > 0; )
        continue;
    close(fd);
    io = read_back(path, 0, data, total);
    ASSERT_EQ(sr__io_file_direct_reads(io), 0U);
    ASSERT_EQ(sr_io_close(io), 0);

    remove_test_dir(dir, path, false);
    free(data);
}

/* A caller may read a header itself first: an odd start still works. */
TEST(read_ahead_starts_where_the_fd_stands)
{
    char *dir = test_tmp_dir("test-sr-io-file"), path[256];
    size_t total = odd_total();
    uint8_t *data = pattern(total, 19);
    struct sr_io *io;
    int fd;

    snprintf(path, sizeof(path), "%s/dom.save", dir);
    put_cold(path, data, total);
    io = read_back(path, 4099, data + 4099, total - 4099);
    ASSERT_EQ(sr_io_close(io), 0);

    /* A borrowed fd is read in place: its offset moves with the stream. */
    fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(sr_io_open_fd(&io, fd, false), 0);
    ASSERT_EQ(sr_io_read(io, data, 10), 0);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 10);
    ASSERT_EQ(sr_io_close(io), 0);
    close(fd);

    remove_test_dir(dir, path, false);
    free(data);
}
