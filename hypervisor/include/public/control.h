/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between the toolstack (libxc) and ferry-hv.
 *
 * Transport: a Unix stream socket at RUNDIR/control.sock, owner-only
 * (0600), whose server also checks the peer's uid (SO_PEERCRED).  Each
 * libxc call is one request and one response.  A message is a 24-byte
 * header followed by `len` bytes of payload; integers are little-endian
 * (the host's: the socket never leaves the machine).
 *
 * Versioning: every request carries FERRY_CTL_VERSION.  The daemon answers
 * a request of another version with rc = -EPROTONOSUPPORT and its own
 * version in the response header, and closes the connection; libxc turns
 * that into "ferry-hv speaks control protocol version N, this xl speaks M".
 *
 * The first request on a connection must be HELLO, which chooses the
 * session's kind once (see below).  A full session's response carries the
 * host's machine-memory file descriptor (SCM_RIGHTS), so that the
 * toolstack maps machine memory once and a foreign mapping is a pointer
 * into that mapping after the daemon has checked ownership: zero copy and
 * no per-page system call.  Control and builder sessions get no
 * descriptor and only the ops of their allow-lists.
 *
 * Every field of every request is validated by the daemon: a payload whose
 * length does not match its op, a bogus domid, a count past its cap, an
 * unknown op — each gets an error response and never affects another
 * request or domain.  When adding an op: add it to the enum, give it a
 * request/response struct with a size assertion, add its name to
 * ferry_ctl_op_name() in control.c and its handler to the dispatch table.
 */
#ifndef FERRY_PUBLIC_CONTROL_H
#define FERRY_PUBLIC_CONTROL_H

#include "abi.h"

#define FERRY_CTL_MAGIC   0x43564846U       /* "FHVC" */
#define FERRY_CTL_VERSION 1
#define FERRY_CTL_MAX_PAYLOAD (8U << 20)    /* largest message body */
#define FERRY_CTL_SOCKET  "control.sock"

struct ferry_ctl_hdr
{
    uint32_t magic;
    uint16_t version;
    uint16_t op;
    uint32_t seq;           /* echoed in the response */
    uint32_t len;           /* payload bytes that follow */
    int32_t rc;             /* response: 0 or -errno; request: 0 */
    uint32_t pad;           /* zero */
};

enum ferry_ctl_op
{
    FERRY_CTL_HELLO = 1,
    FERRY_CTL_HOST_INFO,
    FERRY_CTL_DOMAIN_CREATE,
    FERRY_CTL_DOMAIN_DESTROY,
    FERRY_CTL_DOMAIN_PAUSE,
    FERRY_CTL_DOMAIN_UNPAUSE,
    FERRY_CTL_DOMAIN_GETINFO,
    FERRY_CTL_DOMAIN_LIST,
    FERRY_CTL_DOMAIN_MAX_MEM,
    FERRY_CTL_DOMAIN_SHUTDOWN,      /* ask the guest to shut down */
    FERRY_CTL_DOMAIN_SET_META,      /* name and config blob */
    FERRY_CTL_DOMAIN_GET_META,
    FERRY_CTL_VCPU_GETCONTEXT,
    FERRY_CTL_VCPU_SETCONTEXT,
    FERRY_CTL_GETPAGEFRAMEINFO3,
    FERRY_CTL_SHADOW_OP,
    FERRY_CTL_MMU_UPDATE,
    FERRY_CTL_MMUEXT_OP,
    FERRY_CTL_MEMORY_OP,
    FERRY_CTL_FOREIGN_MAP,
    FERRY_CTL_CONSOLE_READ,
    FERRY_CTL_DMESG_READ,
    FERRY_CTL_AUDIT,
    FERRY_CTL_DOMAIN_RESUME,        /* undo a (suspend) shutdown */
    FERRY_CTL_DOMAIN_RENAME,        /* compare-and-swap of the name */
    FERRY_CTL_DOMAIN_WAIT,          /* block until it has shut down */
    FERRY_CTL_VCPU_GETINFO,         /* Xen's XEN_DOMCTL_getvcpuinfo */
    FERRY_CTL_DOMAIN_THROTTLE,      /* the migration throttle */
    FERRY_CTL_STAGING,              /* builder: its staging memfd */
    FERRY_CTL_FRAME_COPY,           /* builder: staging <-> its frames */
    FERRY_CTL_BUILD_DONE,           /* builder: its domain is complete */
    FERRY_CTL_NR_OPS
};

/*
 * HELLO: an empty request opens a full session, whose response carries
 * the SCM_RIGHTS fd of machine memory.  A request of struct
 * ferry_ctl_hello_req opens a session of a lesser kind, which gets no fd
 * and may issue only the ops of its allow-list (others: -EPERM):
 *
 *  - CONTROL: the control plane (list, info, names, pause, unpause,
 *    destroy, consoles) and nothing that writes a frame: no memory or
 *    MMU op, no vCPU context, no foreign mapping.
 *  - BUILDER: builds one domain.  Its DOMAIN_CREATE binds the session to
 *    the domain it creates, for the session's life (no second create, no
 *    unbind); every later op must name that domain.  Page contents go
 *    through a staging memfd of its own (STAGING) and FRAME_COPY, which
 *    the daemon checks frame by frame.  The restore engine runs in one,
 *    so that a process parsing an untrusted stream never holds the
 *    machine memory.  Until the builder says BUILD_DONE (request struct
 *    ferry_ctl_domid naming its domain), the domain is its to finish: if
 *    the session closes first (the parser crashed, was killed, or gave
 *    up), the daemon destroys the domain and every frame goes back to the
 *    heap.  After BUILD_DONE the domain outlives the session, and the
 *    session may issue no more ops on it.
 */
#define FERRY_SESSION_FULL      0U
#define FERRY_SESSION_CONTROL   1U
#define FERRY_SESSION_BUILDER   2U
struct ferry_ctl_hello_req
{
    uint32_t kind;              /* FERRY_SESSION_* */
    uint32_t pad;               /* zero */
};

struct ferry_ctl_hello_resp
{
    uint64_t max_page;          /* frames in the memory file */
    uint64_t mem_bytes;         /* size of the memory file */
    uint64_t m2p_first_mfn;     /* M2P storage frames (read-only view) */
    uint64_t m2p_nr_frames;
    uint32_t page_shift;
    uint32_t nr_cpus;
    char version[32];           /* ferry's version string */
};

struct ferry_ctl_host_info_resp
{
    uint64_t total_pages;
    uint64_t free_pages;
    uint32_t nr_cpus;
    uint32_t nr_domains;
    uint32_t xen_major;         /* the Xen interface ferry mirrors */
    uint32_t xen_minor;
    char xen_extra[16];
    char version[32];
    char commandline[128];
    uint64_t uptime_ms;
};

struct ferry_ctl_domid
{
    domid_t domid;
    uint16_t pad[3];
};

struct ferry_ctl_create_req
{
    domid_t domid;              /* DOMID_ANY: the daemon picks */
    uint16_t pad;
    uint32_t flags;             /* XEN_DOMCTL_CDF_*; hvm is refused */
    uint32_t max_vcpus;
    uint32_t ssidref;
    uint8_t handle[16];
};

struct ferry_ctl_list_req
{
    domid_t first;              /* list domains with id >= first */
    uint16_t pad;
    uint32_t max;               /* at most this many (<= 1024) */
};

struct ferry_ctl_max_mem_req
{
    domid_t domid;
    uint16_t pad[3];
    uint64_t max_memkb;
};

struct ferry_ctl_shutdown_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t reason;            /* SHUTDOWN_* the guest is asked for */
};

/* Per-domain metadata the toolstack keeps in the daemon (Xen: xenstore). */
#define FERRY_NAME_MAX 64
#define FERRY_META_BLOB_MAX (1U << 20)
struct ferry_ctl_meta
{
    domid_t domid;
    uint16_t pad;
    uint32_t blob_len;          /* config JSON bytes that follow */
    char name[FERRY_NAME_MAX];  /* NUL-terminated */
    /* GET_META: when the toolstack first named the domain, in seconds
     * since the Epoch (libxl's /vm/UUID/start_time); SET_META: zero. */
    uint64_t start_time;
};

/*
 * DOMAIN_RENAME: the name becomes `name` only if it is `expect` now
 * (-EBUSY otherwise, nothing changed); -EEXIST if another domain has
 * `name`.  Both NUL-terminated.  A migration commits or aborts through
 * it, so that exactly one of the two wins.
 */
struct ferry_ctl_rename_req
{
    domid_t domid;
    uint16_t pad[3];
    char expect[FERRY_NAME_MAX];
    char name[FERRY_NAME_MAX];
};

/*
 * DOMAIN_WAIT: block until the domain has shut down (for any reason) or
 * is dying, or until timeout_ms has passed (at most FERRY_CTL_WAIT_MAX_MS,
 * so that a daemon stopping is never held up long); answers with its
 * getdomaininfo, as DOMAIN_GETINFO does, whichever came first (-ESRCH if
 * it is gone).  The control plane's VIRQ_DOM_EXC: a toolstack waiting for
 * a guest to suspend sees it the moment it does, without polling.
 */
#define FERRY_CTL_WAIT_MAX_MS 1000
struct ferry_ctl_wait_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t timeout_ms;
};

/*
 * DOMAIN_THROTTLE: set the migration throttle (percent of each vCPU's
 * time withheld, 0..99; 0 lifts it) when set is 1, or only read it when
 * set is 0.  The response is the throttle in force afterwards.
 */
struct ferry_ctl_throttle_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t set;
    uint32_t pct;
    uint32_t pad2;
};

struct ferry_ctl_throttle_resp
{
    uint32_t pct;
    uint32_t pad;
};

struct ferry_ctl_vcpu_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t vcpu;
    /* SETCONTEXT: struct vcpu_guest_context follows (or nothing: reset) */
};

/* VCPU_GETINFO: request ferry_ctl_vcpu_req; response Xen's struct
 * xen_domctl_getvcpuinfo (abi.h). */

/*
 * GETPAGEFRAMEINFO3 flags.  FERRY_PFINFO_ZERO: report an ordinary page
 * whose frame nothing has written since the domain got it (so it holds
 * zeros) as XEN_DOMCTL_PFINFO_XALLOC.  Xen's domctl has no such flag; a
 * daemon without it ignored the field (then "pad"), and answers NOTAB.
 */
#define FERRY_PFINFO_ZERO 0x1U

struct ferry_ctl_pfinfo_req
{
    domid_t domid;
    uint16_t flags;             /* FERRY_PFINFO_*; others: EINVAL */
    uint32_t num;               /* <= XEN_DOMCTL_PFINFO_MAX; num u64 MFNs follow */
};

/*
 * SHADOW_OP: a bitmap is built only for at most the domain's PFN space
 * (its max_pfn + 1, or its maximum memory) and only if it fits one
 * answer (FERRY_CTL_MAX_PAYLOAD); otherwise -E2BIG.
 */
struct ferry_ctl_shadow_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t op;
    uint32_t mode;
    uint32_t want_bitmap;       /* 1: return the bitmap after the stats */
    uint64_t pages;
};

struct ferry_ctl_shadow_resp
{
    uint64_t pages;
    struct xen_domctl_shadow_op_stats stats;
    uint32_t mb;
    uint32_t pad;
    /* ceil(pages / 8) bitmap bytes follow when asked for */
};

struct ferry_ctl_mmu_req
{
    uint32_t foreigndom;        /* as the hypercall's argument */
    uint32_t count;             /* entries that follow (<= 4096) */
};

struct ferry_ctl_mmu_resp
{
    uint32_t done;
    uint32_t pad;
};

struct ferry_ctl_memop_req
{
    uint32_t cmd;               /* XENMEM_* */
    domid_t domid;
    uint16_t pad;
    uint32_t extent_order;
    uint32_t mem_flags;
    uint64_t nr_extents;        /* u64 extents follow (<= 1M; 0 for the
                                   queries, which take none: -EINVAL) */
};

struct ferry_ctl_memop_resp
{
    int64_t ret;                /* the hypercall's return value */
    /* nr_extents u64 extents follow (updated in place) */
};

#define FERRY_MAP_READ  1U
#define FERRY_MAP_WRITE 2U
struct ferry_ctl_map_req
{
    domid_t domid;
    uint16_t pad;
    uint32_t prot;              /* FERRY_MAP_* */
    uint32_t num;               /* u64 MFNs follow (<= 1M) */
    uint32_t pad2;
};
/* Response: num int32 per-frame errors (0, -EPERM, -EINVAL). */

/*
 * STAGING (builder sessions): the request carries, by SCM_RIGHTS, a memfd
 * of at least `bytes` bytes sealed with F_SEAL_SHRINK (so that the daemon,
 * which maps it, can never fault on it), once per session.  FRAME_COPY
 * then copies `num` pages between staging offset `offset` and the frames
 * named by the u64 MFNs that follow: all must belong to the bound domain
 * (-EPERM), and a frame written must be able to take the writable type,
 * as a writable foreign mapping must on Xen (-EBUSY for a page table in
 * use).  All frames are checked before any is copied; the response names
 * the first one refused.
 */
#define FERRY_STAGING_MAX   (16U << 20)
struct ferry_ctl_staging_req
{
    uint64_t bytes;             /* page multiple, <= FERRY_STAGING_MAX */
};

#define FERRY_COPY_TO_FRAMES   1U
#define FERRY_COPY_FROM_FRAMES 2U
struct ferry_ctl_copy_req
{
    domid_t domid;              /* the bound domain */
    uint16_t pad;
    uint32_t dir;               /* FERRY_COPY_* */
    uint64_t offset;            /* page-aligned, in the staging memfd */
    uint32_t num;               /* u64 MFNs follow */
    uint32_t pad2;
};

struct ferry_ctl_copy_resp
{
    uint32_t bad;               /* index of the frame refused, on error */
    uint32_t pad;
};

#define FERRY_CONSOLE_CLEAR 1U      /* DMESG_READ: forget what was read */
struct ferry_ctl_console_req
{
    domid_t domid;              /* DOMID_XEN: the hypervisor's own log */
    uint16_t flags;             /* FERRY_CONSOLE_*; zero for a domain's */
    uint32_t max;               /* bytes wanted (<= 1 MiB; a domain's
                                   read returns at most its 64 KiB ring) */
    uint64_t cursor;            /* bytes ever produced, where to resume */
};

struct ferry_ctl_console_resp
{
    uint64_t cursor;            /* where the next read resumes */
    uint32_t len;               /* bytes that follow */
    uint32_t lost;              /* bytes overwritten before they were read */
};

_Static_assert(sizeof(struct ferry_ctl_hdr) == 24, "ctl header");
_Static_assert(sizeof(struct ferry_ctl_hello_resp) == 72, "hello resp");
_Static_assert(sizeof(struct ferry_ctl_create_req) == 32, "create req");
_Static_assert(sizeof(struct ferry_ctl_meta) == 80, "meta");
_Static_assert(sizeof(struct ferry_ctl_rename_req) == 136, "rename req");
_Static_assert(sizeof(struct ferry_ctl_wait_req) == 8, "wait req");
_Static_assert(sizeof(struct ferry_ctl_shadow_req) == 24, "shadow req");
_Static_assert(sizeof(struct ferry_ctl_memop_req) == 24, "memop req");
_Static_assert(sizeof(struct ferry_ctl_map_req) == 16, "map req");
_Static_assert(sizeof(struct ferry_ctl_hello_req) == 8, "hello req");
_Static_assert(sizeof(struct ferry_ctl_staging_req) == 8, "staging req");
_Static_assert(sizeof(struct ferry_ctl_copy_req) == 24, "copy req");
_Static_assert(sizeof(struct ferry_ctl_copy_resp) == 8, "copy resp");

#endif /* FERRY_PUBLIC_CONTROL_H */
