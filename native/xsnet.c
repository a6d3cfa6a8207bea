// native/xsnet.c: the xswitch port I/O addon. Syscalls only (TAP open, AF_PACKET open, batched recv/send on a
// caller-owned slab, fd readiness via uv_poll); no packet parsing and no policy. Errors come back as -errno.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include <uv.h>

/* Kernel constants newer than the installed 6.1 uapi headers. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef TUN_F_UDP_TUNNEL_GSO
#define TUN_F_UDP_TUNNEL_GSO 0x080
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

/* TAP virtio-net header: 12 bytes, the virtio 1.0 layout (virtio_net_hdr_mrg_rxbuf: the 10-byte header plus
 * num_buffers) that vhost and QEMU use and that the 24-byte tunnel header (DESIGN §5) extends. It sits in the slot's
 * headroom, so the Ethernet header still starts at slotStart + HEADROOM. AF_PACKET's PACKET_VNET_HDR is always the
 * plain 10-byte header. */
#define TAP_VNET_HDR_LEN 12
/* virtio_net_hdr_v1_hash_tunnel: the 12-byte header, hash_value u32, hash_report u16, padding u16, outer_th_offset
 * u16, inner_nh_offset u16 (kernel 6.18; not in the installed uapi headers). */
#define TAP_VNET_TNL_HDR_LEN 24
/* Most frames one recvBatch/sendBatch call moves (bounds the on-stack mmsghdr arrays). */
#define MAX_BATCH 256
/* Socket buffers for AF_PACKET: room for a few hundred 64 KB super-frames. */
#define SOCK_BUF_BYTES (16 << 20)

/* What each fd is, so recvBatch/sendBatch pick read()/write() (TAP) or recvmmsg/sendmmsg (AF_PACKET). */
enum { FD_UNKNOWN = 0, FD_TAP = 1, FD_PACKET = 2 };
#define FD_KINDS 65536
static volatile uint8_t fd_kind[FD_KINDS];

static void set_kind(int fd, uint8_t k) {
  if (fd >= 0 && fd < FD_KINDS) fd_kind[fd] = k;
}
/* An fd the addon did not open is asked each time (it may be closed and its number reused behind our back). */
static uint8_t get_kind(int fd) {
  if (fd >= 0 && fd < FD_KINDS && fd_kind[fd] != FD_UNKNOWN) return fd_kind[fd];
  int type = 0;
  socklen_t l = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 ? FD_PACKET : FD_TAP;
}

/* Optional TPACKET_V2 rings of an AF_PACKET fd (openPacket with ringFrames > 0): RX ring then TX ring in one
 * mapping. recvBatch/sendBatch copy between the rings and the caller's slab, so callers see no difference. */
typedef struct {
  uint8_t *map;
  size_t map_len, ring_bytes;
  unsigned frame_size, block_size, frames_per_block, frame_nr;
  unsigned rx_head, tx_head;
  unsigned vnet; /* virtio-net header bytes before each frame (0 or 10) */
} ring_t;
static ring_t *rings[FD_KINDS];
#define RING_BLOCK_BYTES (1u << 18)
#define RING_TX_DATA_OFF (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))

static inline struct tpacket2_hdr *ring_frame(const ring_t *r, uint8_t *base, unsigned i) {
  return (struct tpacket2_hdr *)(base + (size_t)(i / r->frames_per_block) * r->block_size +
                                 (size_t)(i % r->frames_per_block) * r->frame_size);
}

static void ring_free(int fd) {
  if (fd < 0 || fd >= FD_KINDS || rings[fd] == NULL) return;
  munmap(rings[fd]->map, rings[fd]->map_len);
  free(rings[fd]);
  rings[fd] = NULL;
}

/* Set up RX and TX rings of about `frames` frames holding `frame_bytes` (virtio-net header included) each. */
static int ring_setup(int fd, unsigned frames, unsigned frame_bytes, unsigned vnet) {
  if (fd >= FD_KINDS) return -EMFILE;
  int v = TPACKET_V2, one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) return -errno;
  /* A frame the kernel cannot send is skipped (marked available again) instead of wedging the TX ring. */
  if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) return -errno;
  unsigned fs = TPACKET_ALIGN(frame_bytes + TPACKET2_HDRLEN + 64);
  if (fs > RING_BLOCK_BYTES) return -EINVAL;
  unsigned fpb = RING_BLOCK_BYTES / fs;
  unsigned blocks = (frames + fpb - 1) / fpb;
  if (blocks == 0) blocks = 1;
  struct tpacket_req req = {
      .tp_block_size = RING_BLOCK_BYTES, .tp_block_nr = blocks, .tp_frame_size = fs, .tp_frame_nr = blocks * fpb};
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return -errno;
  if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) return -errno;
  size_t bytes = (size_t)blocks * RING_BLOCK_BYTES;
  void *map = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) return -errno;
  ring_t *r = calloc(1, sizeof *r);
  if (!r) {
    munmap(map, 2 * bytes);
    return -ENOMEM;
  }
  r->map = map;
  r->map_len = 2 * bytes;
  r->ring_bytes = bytes;
  r->frame_size = fs;
  r->block_size = RING_BLOCK_BYTES;
  r->frames_per_block = fpb;
  r->frame_nr = blocks * fpb;
  r->vnet = vnet;
  rings[fd] = r;
  return 0;
}


/* ---- TAP batches through io_uring ----
 * A tun fd has no batched read/write call, so a TAP batch costs one syscall per frame. One small io_uring per thread
 * (created on first use; the addon may run on several threads) turns a batch into one io_uring_enter: the reads or
 * writes are still done one by one by the kernel, inline during the enter (the fd is O_NONBLOCK, so an empty queue
 * completes with -EAGAIN instead of arming a poll). No liburing: raw syscalls and the mmapped rings.
 * XSWITCH_IO_URING=0 in the environment (read once per process) keeps the read()/write() loop; so does a kernel
 * that refuses io_uring_setup (ENOSYS, EPERM, kernel.io_uring_disabled). */
#define URING_ENTRIES MAX_BATCH

typedef struct {
  int fd;
  unsigned *sq_tail, *sq_mask;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  void *sq_map, *cq_map;
  size_t sq_len, cq_len, sqes_len;
  unsigned sq_local_tail;
  /* The ring fd as io_uring_enter takes it: registered (IORING_ENTER_REGISTERED_RING, no fdget per enter) or not. */
  int enter_fd;
  unsigned enter_flags;
} uring_t;
/* No fixed files (IORING_REGISTER_FILES): the ring's file table keeps each TAP open until the ring is torn down,
 * and after the process dies that teardown runs later in a kernel worker, so a killed daemon would hold its TAPs
 * for a while and the restarted one's attach by name would get -EBUSY (test/e2e/restart.test.ts). Plain fds cost an
 * fget/fput per SQE instead. */

/* Per thread: 0 not tried yet, 1 ring ready, -1 disabled or failed (the loops are used). */
static __thread int uring_state;
static __thread uring_t uring;
/* Process-wide switch, from XSWITCH_IO_URING: -1 unread, 0 off, 1 on. */
static int uring_allowed = -1;
/* Why the ring is not used on this thread (0: it is, or was not tried yet); for ioPath(). */
static __thread int uring_errno;
/* uring_free is this thread's env cleanup hook (added once: Node aborts on a duplicate hook). */
static __thread int uring_hooked;
/* Per fd: frames the last TAP recvBatch got, so an idle port probes with one read instead of a full batch. */
static uint16_t rx_hint[FD_KINDS];
/* Per fd, how its SQEs must ask for "never wait". An O_NONBLOCK file that supports IOCB_NOWAIT (FMODE_NOWAIT: pipes,
 * sockets) does NOT get -EAGAIN from io_uring: the ring arms a poll and the request waits for data, which would
 * block the enter. RWF_NOWAIT makes -EAGAIN final there. A file without FMODE_NOWAIT refuses RWF_NOWAIT
 * (-EOPNOTSUPP, nothing moved) and, being O_NONBLOCK, gets -EAGAIN as final anyway. */
enum { NW_FLAG = 0, NW_PLAIN = 1, NW_LOOP = 2 };
static uint8_t nowait_mode[FD_KINDS];

/* After -EOPNOTSUPP to RWF_NOWAIT: NW_PLAIN if the fd is O_NONBLOCK (safe without the flag), else NW_LOOP. */
static int nowait_fallback(int fd) {
  int fl = fcntl(fd, F_GETFL);
  int m = fl >= 0 && (fl & O_NONBLOCK) ? NW_PLAIN : NW_LOOP;
  nowait_mode[fd] = (uint8_t)m;
  return m;
}

/* Only the addon's own TAP fds take the ring: an fd it did not open (a FIFO in the tests, anything a caller passes)
 * keeps the loops, because a file that lacks FMODE_NOWAIT but whose reads io_uring still retries by poll (a named
 * FIFO on 6.18) would make the enter wait for data. */
static inline int nowait_get(int fd) {
  return fd >= 0 && fd < FD_KINDS && fd_kind[fd] == FD_TAP ? nowait_mode[fd] : NW_LOOP;
}

/* Frames and batches moved through the ring, and batches moved by the read()/write() loops (for tests). */
static __thread uint64_t uring_frames, uring_batches, loop_batches, uring_moved;
static int uring_register(int ring, unsigned op, void *arg, unsigned nr) {
  return (int)syscall(__NR_io_uring_register, ring, op, arg, nr);
}

static void uring_free(void *arg) {
  (void)arg;
  if (uring_state != 1) return;
  if (uring.sqes) munmap(uring.sqes, uring.sqes_len);
  if (uring.cq_map && uring.cq_map != uring.sq_map) munmap(uring.cq_map, uring.cq_len);
  if (uring.sq_map) munmap(uring.sq_map, uring.sq_len);
  close(uring.fd);
  memset(&uring, 0, sizeof uring);
  uring_state = 0;
}

static int uring_setup_flags(struct io_uring_params *p, unsigned flags) {
  memset(p, 0, sizeof *p);
  p->flags = flags;
  return (int)syscall(__NR_io_uring_setup, URING_ENTRIES, p);
}

/* The ring of this thread, or NULL (then the caller uses the syscall loops). */
static uring_t *uring_get(napi_env env) {
  if (uring_state == 1) return &uring;
  if (uring_state < 0) return NULL;
  if (uring_allowed < 0) {
    const char *v = getenv("XSWITCH_IO_URING");
    uring_allowed = !(v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "no") == 0));
  }
  uring_state = -1;
  if (!uring_allowed) return NULL;
  struct io_uring_params p;
  /* Newest flags first: DEFER_TASKRUN runs completion work only inside our own enter (6.1), NO_SQARRAY drops the
   * index indirection (6.6), SUBMIT_ALL keeps submitting past an SQE that fails at submission (5.18). */
  static const unsigned tries[] = {
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_NO_SQARRAY,
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_SUBMIT_ALL,
  };
  int fd = -1, no_sqarray = 0;
  for (size_t i = 0; i < sizeof tries / sizeof tries[0] && fd < 0; i++) {
    fd = uring_setup_flags(&p, tries[i]);
    if (fd < 0 && errno != EINVAL) break; /* ENOSYS, EPERM, ENOMEM: no io_uring here */
    no_sqarray = fd >= 0 && (tries[i] & IORING_SETUP_NO_SQARRAY) != 0;
  }
  if (fd < 0) {
    uring_errno = errno;
    return NULL;
  }
  uring_t *r = &uring;
  memset(r, 0, sizeof *r);
  r->fd = fd;
  r->sq_len = p.sq_off.array + (no_sqarray ? 0 : p.sq_entries * sizeof(unsigned));
  if (r->sq_len < p.sq_off.flags + sizeof(unsigned)) r->sq_len = p.sq_off.flags + sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_len > r->sq_len) r->sq_len = r->cq_len;
  r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sq_map == MAP_FAILED) goto fail;
  r->cq_map = single ? r->sq_map
                     : mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  if (r->cq_map == MAP_FAILED) goto fail;
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) goto fail;
  uint8_t *sq = r->sq_map, *cq = r->cq_map;
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  if (!no_sqarray) {
    /* The classic layout: slot i of the index array names SQE i, once and for all. */
    unsigned *arr = (unsigned *)(sq + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) arr[i] = i;
  }
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->sq_local_tail = *r->sq_tail;
  r->enter_fd = fd;
  struct io_uring_rsrc_update ru = {.offset = (uint32_t)-1, .data = (uint64_t)fd};
  if (uring_register(fd, IORING_REGISTER_RING_FDS, &ru, 1) == 1) {
    r->enter_fd = (int)ru.offset;
    r->enter_flags = IORING_ENTER_REGISTERED_RING;
  }
  uring_state = 1;
  uring_errno = 0;
  if (!uring_hooked) {
    napi_add_env_cleanup_hook(env, uring_free, NULL);
    uring_hooked = 1;
  }
  return r;
fail:
  uring_errno = errno;
  if (r->sqes && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_len);
  if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_len);
  if (r->sq_map && r->sq_map != MAP_FAILED) munmap(r->sq_map, r->sq_len);
  close(fd);
  memset(r, 0, sizeof *r);
  return NULL;
}

/* Queue one read or write SQE; user_data is its index in the batch. */
static inline void uring_prep(uring_t *r, uint8_t op, int fd, void *buf, uint32_t len, uint64_t k, uint8_t flags,
                              int nowait) {
  struct io_uring_sqe *e = &r->sqes[r->sq_local_tail & *r->sq_mask];
  memset(e, 0, sizeof *e);
  e->opcode = op;
  e->flags = flags;
  e->rw_flags = nowait ? RWF_NOWAIT : 0;
  e->fd = fd;
  e->addr = (uint64_t)(uintptr_t)buf;
  e->len = len;
  e->off = (uint64_t)-1; /* current position: a stream fd */
  e->user_data = k;
  r->sq_local_tail++;
}

/* Submit the n queued SQEs and wait for their n CQEs; res[k] gets the result of SQE k. Returns 0, or -errno if the
 * ring failed (it is given up for this thread then). */
static int uring_run(uring_t *r, unsigned n, int32_t *res) {
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  unsigned submitted = 0, reaped = 0, fails = 0;
  while (reaped < n) {
    unsigned head = *r->cq_head, tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    while (head != tail && reaped < n) {
      struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
      if (c->user_data < n) res[c->user_data] = c->res;
      head++;
      reaped++;
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    if (reaped == n) break;
    int got = (int)syscall(__NR_io_uring_enter, r->enter_fd, n - submitted, n - reaped,
                           IORING_ENTER_GETEVENTS | r->enter_flags, NULL, 0);
    if (got < 0) {
      int e = errno;
      /* EINTR (a signal), EAGAIN / EBUSY (no memory, completions backed up): again, a bounded number of times. */
      if ((e == EINTR || e == EAGAIN || e == EBUSY) && ++fails < 1000) continue;
      /* Anything else, or for ever: drop the ring for this thread (the loops take over). If SQEs had gone in, the
       * batch's outcome is unknown; only a broken kernel gets here. */
      uring_free(NULL);
      uring_state = -1;
      uring_errno = e;
      return -e;
    }
    submitted += (unsigned)got;
  }
  return 0;
}

/* TAP recvBatch through the ring: rounds of reads into slots n.., starting with what the fd last gave (at least
 * one) and doubling while a round comes back full. The reads run in submission order, so the frames are the
 * successful results in order; a frame that arrived after an earlier read of the round found the queue empty is
 * moved down into the first free slot (nothing lost or reordered). Returns frames, -errno (no frame and a read
 * failed otherwise), or INT32_MIN if the ring failed before anything was read (use the loop). */
static int tap_recv_uring(uring_t *r, int fd, uint8_t *slab, const uint32_t *offs, const uint32_t *caps,
                          uint32_t *lens, int32_t *tcis, int max) {
  int32_t res[MAX_BATCH];
  int n = 0, err = 0;
  int w = fd >= 0 && fd < FD_KINDS ? 2 * rx_hint[fd] : max;
  if (w < 1) w = 1;
  int mode = nowait_get(fd);
  if (mode == NW_LOOP) return INT32_MIN;
  while (n < max) {
    if (w > max - n) w = max - n;
    for (int k = 0; k < w; k++)
      uring_prep(r, IORING_OP_READ, fd, slab + offs[n + k], caps[n + k], (uint64_t)k, 0, mode == NW_FLAG);
    if (uring_run(r, (unsigned)w, res) < 0) {
      if (n == 0) return INT32_MIN;
      break;
    }
    if (res[0] == -EOPNOTSUPP && mode == NW_FLAG) {
      /* The file refused RWF_NOWAIT (every read of the round did; none moved data): again without it. */
      mode = nowait_fallback(fd);
      if (mode == NW_LOOP) {
        if (n == 0) return INT32_MIN;
        break;
      }
      continue;
    }
    uring_batches++;
    int base = n, full = 1;
    for (int k = 0; k < w; k++) {
      int32_t v = res[k];
      if (v < 0) {
        full = 0;
        if (v != -EAGAIN && v != -EINTR && err == 0) err = -v;
        continue;
      }
      if (base + k != n) {
        memmove(slab + offs[n], slab + offs[base + k], (uint32_t)v < caps[n] ? (uint32_t)v : caps[n]);
        uring_moved++;
      }
      lens[n] = (uint32_t)v < caps[n] ? (uint32_t)v : caps[n];
      tcis[n] = -1;
      n++;
    }
    if (!full) break;
    w *= 2;
  }
  if (fd >= 0 && fd < FD_KINDS) rx_hint[fd] = (uint16_t)n;
  uring_frames += (uint64_t)n;
  if (n == 0 && err != 0) return -err;
  return n;
}

/* TAP sendBatch through the ring: the writes are linked, so the first one refused fails the rest (-ECANCELED) and
 * nothing after it leaves: the count stops there exactly as the write() loop's does. Returns as SendBatch, or
 * INT32_MIN if the ring failed before anything was written (use the loop). */
static int tap_send_uring(uring_t *r, int fd, uint8_t *slab, const uint32_t *offs, const uint32_t *lens, int count) {
  int32_t res[MAX_BATCH];
  int mode = nowait_get(fd);
  for (;;) {
    if (mode == NW_LOOP) return INT32_MIN;
    for (int k = 0; k < count; k++)
      uring_prep(r, IORING_OP_WRITE, fd, slab + offs[k], lens[k], (uint64_t)k, k + 1 < count ? IOSQE_IO_LINK : 0,
                 mode == NW_FLAG);
    if (uring_run(r, (unsigned)count, res) < 0) return INT32_MIN;
    /* Refused RWF_NOWAIT: the first write failed before moving anything and cancelled the rest. */
    if (res[0] != -EOPNOTSUPP || mode != NW_FLAG) break;
    mode = nowait_fallback(fd);
  }
  uring_batches++;
  int n = 0;
  while (n < count && res[n] >= 0) n++;
  uring_frames += (uint64_t)n;
  if (n == 0) return res[0] == -ECANCELED ? -EAGAIN : res[0];
  return n;
}

/* ---- argument helpers ---- */

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int arg_bool(napi_env env, napi_value v, int *out) {
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  *out = b ? 1 : 0;
  return 1;
}

/* An ArrayBuffer or any TypedArray / DataView-free typed view: its bytes. */
static int arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    void *p;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return 0;
    size_t el = 1;
    switch (t) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: el = 1;
    }
    *data = p;
    *len = n * el;
    return 1;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *p;
    if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok) return 0;
    *data = p;
    return 1;
  }
  return 0;
}

static int arg_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, count, data, &ab, &off) != napi_ok) return 0;
  return t == want;
}

static int arg_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &n) != napi_ok) return 0;
  return n > 0 && n < cap - 1; /* n == cap - 1 may mean cut short */
}

#define GET_ARGS(n)                                                   \
  size_t argc = (n);                                                  \
  napi_value argv[(n) > 0 ? (n) : 1];                                 \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (n)) \
    return make_int(env, -EINVAL);

/* ---- exports ---- */

/* ---- network namespaces: the calling thread only ----
 * A tun file belongs to the namespace of the thread that opened /dev/net/tun, and TUNSETIFF looks the name up
 * there; setns(CLONE_NEWNET) moves only the calling thread. So a TAP that lives in another namespace is reached by
 * entering it on this thread, opening, and coming back. netns_enter keeps an fd of the thread's own namespace;
 * every path after it goes through netns_leave. */

/* Enter the network namespace at path (a /run/netns/NAME or /proc/PID/ns/net file) on this thread. *back gets an
 * fd of the namespace the thread was in. 0 or -errno (then nothing changed and *back is -1). */
static int netns_enter(const char *path, int *back) {
  *back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*back < 0) return -errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int r = fd < 0 ? -1 : setns(fd, CLONE_NEWNET);
  int e = errno;
  if (fd >= 0) close(fd);
  if (r < 0) {
    close(*back);
    *back = -1;
    return -e;
  }
  return 0;
}

/* Back to the namespace netns_enter left (errno preserved). Failing here would leave the main thread, and every
 * later socket and TAP it opens, in the wrong namespace: that is not survivable, so it is a fatal error. */
static void netns_leave(int back) {
  if (back < 0) return;
  int e = errno;
  if (setns(back, CLONE_NEWNET) < 0) napi_fatal_error("xsnet", NAPI_AUTO_LENGTH, "cannot return to the daemon's network namespace", NAPI_AUTO_LENGTH);
  close(back);
  errno = e;
}

/* Interface `name` in the calling thread's namespace: its index, the ethtool driver and bus_info (a TAP is
 * driver "tun", bus "tap"; a TUN "tun"/"tun"; veth "veth"; empty strings where the driver does not say), and
 * ETHTOOL_GLINK (up with a carrier; a TAP has one while an fd is attached). 0 or -errno (-ENODEV: no such
 * interface). */
static int link_kind(const char *name, int *idx, char *drv, char *bus, int *link) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
    int e = errno;
    close(s);
    return -e;
  }
  *idx = ifr.ifr_ifindex;
  struct ethtool_drvinfo di;
  memset(&di, 0, sizeof di);
  di.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = (void *)&di;
  drv[0] = bus[0] = 0;
  if (ioctl(s, SIOCETHTOOL, &ifr) == 0) {
    memcpy(drv, di.driver, sizeof di.driver);
    drv[sizeof di.driver - 1] = 0;
    memcpy(bus, di.bus_info, sizeof di.bus_info);
    bus[sizeof di.bus_info - 1] = 0;
  }
  struct ethtool_value ev;
  memset(&ev, 0, sizeof ev);
  ev.cmd = ETHTOOL_GLINK;
  ifr.ifr_data = (void *)&ev;
  *link = ioctl(s, SIOCETHTOOL, &ifr) == 0 && ev.data != 0;
  close(s);
  return 0;
}

/* An optional string argument: 1 with buf filled, 0 if undefined/null/absent, -1 if not a usable string. */
static int opt_string(napi_env env, size_t argc, napi_value *argv, size_t i, char *buf, size_t cap) {
  if (argc <= i) return 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[i], &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  return arg_string(env, argv[i], buf, cap) ? 1 : -1;
}

/* openTap(name: string, vnetHdr: boolean[, hdrLen: number, tunnelGso: boolean[, persist: boolean[, netns: string]]])
 *   -> fd | -errno
 * Opens /dev/net/tun non-blocking as IFF_TAP|IFF_NO_PI (|IFF_VNET_HDR). With vnetHdr the header is hdrLen bytes
 * (default 12; 24 = virtio_net_hdr_v1_hash_tunnel, TUNSETVNETHDRSZ) and TUNSETOFFLOAD enables
 * CSUM|TSO4|TSO6|TSO_ECN (|USO4|USO6 where the kernel has them), so the kernel hands us 64 KB TCP super-frames with
 * partial checksums. tunnelGso adds TUN_F_UDP_TUNNEL_GSO (needs hdrLen 24): the kernel then accepts UDP-tunnel
 * GSO frames written to the TAP (and refuses the open with -EINVAL where it has no such offload). Without persist
 * the device exists while the fd is open (unless it was made persistent before); persist sets TUNSETPERSIST, so it
 * outlives the fd and the process (tapSetPersist(fd, false) before close deletes it). An existing TAP of that name
 * is attached to, and everything above is set on it again; a non-TAP device of that name gives -EINVAL, a TAP
 * another fd holds -EBUSY. netns (a namespace file, /run/netns/NAME or /proc/PID/ns/net): attach to the existing
 * TAP `name` in that namespace (-ENODEV if there is none: nothing is created there); the calling thread enters
 * it for the open and TUNSETIFF only and always comes back. */
static napi_value OpenTap(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return make_int(env, -EINVAL);
  char name[IFNAMSIZ + 1] = {0};
  char nspath[4096] = {0};
  int vnet = 0, tunnel = 0, persist = 0;
  int32_t hdr_len = TAP_VNET_HDR_LEN;
  if (!arg_string(env, argv[0], name, sizeof name) || strlen(name) >= IFNAMSIZ || !arg_bool(env, argv[1], &vnet))
    return make_int(env, -EINVAL);
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t != napi_undefined && (!arg_int(env, argv[2], &hdr_len) || !arg_bool(env, argv[3], &tunnel)))
      return make_int(env, -EINVAL);
  }
  if (argc >= 5) {
    napi_valuetype t;
    napi_typeof(env, argv[4], &t);
    if (t != napi_undefined && !arg_bool(env, argv[4], &persist)) return make_int(env, -EINVAL);
  }
  int has_ns = opt_string(env, argc, argv, 5, nspath, sizeof nspath);
  if (has_ns < 0) return make_int(env, -EINVAL);
  if (vnet && hdr_len != TAP_VNET_HDR_LEN && hdr_len != TAP_VNET_TNL_HDR_LEN) return make_int(env, -EINVAL);
  if (tunnel && (!vnet || hdr_len != TAP_VNET_TNL_HDR_LEN)) return make_int(env, -EINVAL);
  int back = -1, fd = -1;
  if (has_ns) {
    int r = netns_enter(nspath, &back);
    if (r < 0) return make_int(env, r);
    /* Attach only: TUNSETIFF on a name that is not there would create a new device in the VM's namespace. */
    if (if_nametoindex(name) == 0) {
      netns_leave(back);
      return make_int(env, -ENODEV);
    }
  }
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    netns_leave(back);
    return make_int(env, -e);
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  int rc = ioctl(fd, TUNSETIFF, &ifr);
  netns_leave(back); /* the file keeps its namespace and device; the ioctls below do not look names up */
  if (rc < 0) goto fail;
  if (vnet) {
    int sz = hdr_len;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) goto fail;
    unsigned long off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (tunnel) {
      /* No fallback: without the tunnel offload the caller must not write tunnel GSO frames. */
      if (ioctl(fd, TUNSETOFFLOAD, off | TUN_F_UDP_TUNNEL_GSO) < 0) goto fail;
    } else if (ioctl(fd, TUNSETOFFLOAD, off | TUN_F_USO4 | TUN_F_USO6) < 0) {
      if (errno != EINVAL || ioctl(fd, TUNSETOFFLOAD, off) < 0) goto fail;
    }
  } else if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
    /* A re-attached device may carry offloads from an earlier open with the header. */
    goto fail;
  }
  if (persist && ioctl(fd, TUNSETPERSIST, 1UL) < 0) goto fail;
  set_kind(fd, FD_TAP);
  if (fd < FD_KINDS) {
    nowait_mode[fd] = NW_FLAG;
    rx_hint[fd] = 0;
  }
  return make_int(env, fd);
fail:;
  int e = errno;
  close(fd);
  return make_int(env, -e);
}

/* tapSetPersist(fd, on: boolean) -> 0 | -errno: TUNSETPERSIST. Off before close() deletes a persistent TAP with
 * its last fd. */
static napi_value TapSetPersist(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd;
  int on = 0;
  if (!arg_int(env, argv[0], &fd) || !arg_bool(env, argv[1], &on)) return make_int(env, -EINVAL);
  return make_int(env, ioctl(fd, TUNSETPERSIST, on ? 1UL : 0UL) < 0 ? -errno : 0);
}

/* linkKind(name: string[, netns: string]) -> { ifindex, driver, bus, link } | -errno
 * What interface `name` is in the calling thread's namespace, or in the namespace file netns (entered on this
 * thread for the lookup only, always left again): -ENODEV if there is no such interface. */
static napi_value LinkKind(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return make_int(env, -EINVAL);
  char name[IFNAMSIZ + 1] = {0};
  char nspath[4096] = {0};
  if (!arg_string(env, argv[0], name, sizeof name) || strlen(name) >= IFNAMSIZ) return make_int(env, -EINVAL);
  int has_ns = opt_string(env, argc, argv, 1, nspath, sizeof nspath);
  if (has_ns < 0) return make_int(env, -EINVAL);
  int back = -1;
  if (has_ns) {
    int r = netns_enter(nspath, &back);
    if (r < 0) return make_int(env, r);
  }
  int idx = 0, link = 0;
  char drv[32], bus[32];
  int r = link_kind(name, &idx, drv, bus, &link);
  netns_leave(back);
  if (r < 0) return make_int(env, r);
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_int32(env, idx, &v);
  napi_set_named_property(env, o, "ifindex", v);
  napi_create_string_utf8(env, drv, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "driver", v);
  napi_create_string_utf8(env, bus, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "bus", v);
  napi_get_boolean(env, link != 0, &v);
  napi_set_named_property(env, o, "link", v);
  return o;
}

/* tapName(fd: number) -> string | -errno: the TAP's interface name (TUNGETIFF), e.g. after a "xs%d" pattern. */
static napi_value TapName(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return make_int(env, -EINVAL);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return make_int(env, -errno);
  napi_value r;
  napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &r);
  return r;
}

/* ifindex(name: string) -> index | -errno (in the calling process's network namespace). */
static napi_value IfIndex(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char name[IFNAMSIZ + 1] = {0};
  if (!arg_string(env, argv[0], name, sizeof name)) return make_int(env, -EINVAL);
  unsigned idx = if_nametoindex(name);
  return make_int(env, idx == 0 ? -errno : (int64_t)idx);
}

/* openPacket(ifname: string, vnetHdr: boolean) -> fd | -errno
 * AF_PACKET SOCK_RAW, non-blocking, bound to ifname with ETH_P_ALL (bound only after the options are set, so no
 * frame of another interface is queued), PACKET_AUXDATA on (recvBatch reports the VLAN tag the kernel always strips),
 * PACKET_VNET_HDR (10-byte virtio_net_hdr) if vnetHdr, PACKET_IGNORE_OUTGOING (no echo of our own tx), 16 MB
 * SO_RCVBUF/SO_SNDBUF (FORCE variants as root), promiscuous membership (dropped by the kernel on close).
 * openPacket(ifname, vnetHdr, ringFrames, frameBytes): with ringFrames > 0, TPACKET_V2 RX and TX rings of about
 * ringFrames frames of frameBytes (virtio-net header included) each; recvBatch/sendBatch then use the rings (no
 * syscall per received batch; one send() kick per sent batch). A frame longer than a ring frame is reported cut. */
static napi_value OpenPacket(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return make_int(env, -EINVAL);
  char name[IFNAMSIZ + 1] = {0};
  int vnet = 0;
  int32_t ring_frames = 0, frame_bytes = 0;
  if (!arg_string(env, argv[0], name, sizeof name) || strlen(name) >= IFNAMSIZ || !arg_bool(env, argv[1], &vnet))
    return make_int(env, -EINVAL);
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t != napi_undefined && (!arg_int(env, argv[2], &ring_frames) || !arg_int(env, argv[3], &frame_bytes) ||
                                ring_frames < 0 || (ring_frames > 0 && frame_bytes < 64)))
      return make_int(env, -EINVAL);
  }
  unsigned idx = if_nametoindex(name);
  if (idx == 0) return make_int(env, -errno);
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_int(env, -errno);
  int one = 1, buf = SOCK_BUF_BYTES;
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) goto fail;
  if (vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) goto fail;
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) goto fail;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) < 0) goto fail;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf) < 0) goto fail;
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (ring_frames > 0) {
    int r = ring_setup(fd, (unsigned)ring_frames, (unsigned)frame_bytes, vnet ? 10 : 0);
    if (r < 0) {
      errno = -r;
      goto fail;
    }
  }
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) goto fail;
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) goto fail;
  set_kind(fd, FD_PACKET);
  return make_int(env, fd);
fail:;
  int e = errno;
  ring_free(fd);
  close(fd);
  return make_int(env, -e);
}

/* recvBatch(fd, slab, offs: Uint32Array, caps: Uint32Array, lens: Uint32Array, tcis: Int32Array, max) -> n | -errno
 * Reads up to max (<= 256) frames: frame k into slab[offs[k] .. offs[k]+caps[k]), its length into lens[k].
 * AF_PACKET: one recvmmsg (MSG_TRUNC: lens[k] is the frame's real length, > caps[k] if it was cut), and tcis[k] =
 * the 802.1Q TCI from PACKET_AUXDATA | (TPID << 16) (TPID 0x8100 unless the kernel reports another), or -1 when
 * the kernel saw no tag. TAP: a read() loop (tcis[k] = -1; tags stay inline; a frame longer than caps[k] is cut
 * to it, lens[k] == caps[k]). With a vnet header the header comes first in the slot. Returns 0 when nothing is
 * pending; -errno only if the first read fails otherwise. */
static napi_value RecvBatch(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  int32_t fd, max;
  uint8_t *slab;
  size_t slab_len, n_offs, n_caps, n_lens, n_tcis;
  uint32_t *offs, *caps, *lens;
  int32_t *tcis;
  if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &slab, &slab_len) ||
      !arg_typed(env, argv[2], napi_uint32_array, (void **)&offs, &n_offs) ||
      !arg_typed(env, argv[3], napi_uint32_array, (void **)&caps, &n_caps) ||
      !arg_typed(env, argv[4], napi_uint32_array, (void **)&lens, &n_lens) ||
      !arg_typed(env, argv[5], napi_int32_array, (void **)&tcis, &n_tcis) || !arg_int(env, argv[6], &max))
    return make_int(env, -EINVAL);
  if (max < 0 || (size_t)max > n_offs || (size_t)max > n_caps || (size_t)max > n_lens || (size_t)max > n_tcis)
    return make_int(env, -EINVAL);
  if (max > MAX_BATCH) max = MAX_BATCH;
  for (int i = 0; i < max; i++)
    if ((uint64_t)offs[i] + caps[i] > slab_len) return make_int(env, -EFAULT);
  if (max == 0) return make_int(env, 0);

  if (get_kind(fd) == FD_TAP) {
    int n = 0;
    /* An idle fd (the last call got at most one frame: a ping, a busy-poll probe) is asked with one read() first:
     * an io_uring_enter for a single read costs more than the read (about 1.3 vs 0.7 us here). */
    int idle = fd >= 0 && fd < FD_KINDS && rx_hint[fd] <= 1;
    uring_t *ur = max > 1 || !idle ? uring_get(env) : NULL;
    if (ur != NULL && idle) {
      ssize_t r;
      do r = read(fd, slab + offs[0], caps[0]);
      while (r < 0 && errno == EINTR);
      if (r < 0) {
        rx_hint[fd] = 0;
        return make_int(env, errno == EAGAIN ? 0 : -errno);
      }
      lens[0] = (uint32_t)r;
      tcis[0] = -1;
      n = 1;
    }
    if (ur != NULL && n < max) {
      int got = tap_recv_uring(ur, fd, slab, offs + n, caps + n, lens + n, tcis + n, max - n);
      if (got != INT32_MIN) {
        if (got < 0 && n > 0) got = 0; /* the first frame stands; the error comes again next call */
        if (fd >= 0 && fd < FD_KINDS) rx_hint[fd] = (uint16_t)(n + (got > 0 ? got : 0));
        return make_int(env, got < 0 ? got : n + got);
      }
    }
    if (uring_state != 1) loop_batches++;
    while (n < max) {
      ssize_t r = read(fd, slab + offs[n], caps[n]);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || n > 0) break;
        return make_int(env, -errno);
      }
      lens[n] = (uint32_t)r;
      tcis[n] = -1;
      n++;
    }
    return make_int(env, n);
  }

  ring_t *ring = fd >= 0 && fd < FD_KINDS ? rings[fd] : NULL;
  if (ring) {
    int n = 0;
    while (n < max) {
      struct tpacket2_hdr *h = ring_frame(ring, ring->map, ring->rx_head);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (!(st & TP_STATUS_USER)) break;
      uint32_t snap = h->tp_snaplen + ring->vnet, real = h->tp_len + ring->vnet;
      memcpy(slab + offs[n], (uint8_t *)h + h->tp_mac - ring->vnet, snap < caps[n] ? snap : caps[n]);
      /* Cut by the ring or by the slot: report at least caps[n], as MSG_TRUNC would. */
      lens[n] = real > snap ? (real > caps[n] ? real : caps[n]) : snap;
      tcis[n] = -1;
      if (st & TP_STATUS_VLAN_VALID) {
        uint32_t tpid = (st & TP_STATUS_VLAN_TPID_VALID) && h->tp_vlan_tpid ? h->tp_vlan_tpid : 0x8100;
        tcis[n] = (int32_t)((tpid << 16) | h->tp_vlan_tci);
      }
      __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      ring->rx_head = ring->rx_head + 1 == ring->frame_nr ? 0 : ring->rx_head + 1;
      n++;
    }
    return make_int(env, n);
  }

  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  } ctl[MAX_BATCH];
  memset(msgs, 0, sizeof(msgs[0]) * (size_t)max);
  for (int i = 0; i < max; i++) {
    iov[i].iov_base = slab + offs[i];
    iov[i].iov_len = caps[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = &ctl[i];
    msgs[i].msg_hdr.msg_controllen = sizeof ctl[i];
  }
  int n;
  do n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT | MSG_TRUNC, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return make_int(env, errno == EAGAIN ? 0 : -errno);
  for (int i = 0; i < n; i++) {
    lens[i] = msgs[i].msg_len;
    tcis[i] = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
          c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata)))
        continue;
      struct tpacket_auxdata aux;
      memcpy(&aux, CMSG_DATA(c), sizeof aux);
      if (aux.tp_status & TP_STATUS_VLAN_VALID) {
        uint32_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) && aux.tp_vlan_tpid ? aux.tp_vlan_tpid : 0x8100;
        tcis[i] = (int32_t)((tpid << 16) | aux.tp_vlan_tci);
      }
    }
  }
  return make_int(env, n);
}

/* sendBatch(fd, slab, offs: Uint32Array, lens: Uint32Array, count) -> sent | -errno
 * Sends frames k = 0..count-1 (<= 256) from slab[offs[k] .. +lens[k]) in order: sendmmsg for AF_PACKET, a write()
 * loop for TAP. Stops at the first refusal and returns how many went; if the very first frame is refused it
 * returns -errno (-EAGAIN / -ENOBUFS: queue full), so calling again from the returned index yields the reason. */
static napi_value SendBatch(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t fd, count;
  uint8_t *slab;
  size_t slab_len, n_offs, n_lens;
  uint32_t *offs, *lens;
  if (!arg_int(env, argv[0], &fd) || !arg_bytes(env, argv[1], &slab, &slab_len) ||
      !arg_typed(env, argv[2], napi_uint32_array, (void **)&offs, &n_offs) ||
      !arg_typed(env, argv[3], napi_uint32_array, (void **)&lens, &n_lens) || !arg_int(env, argv[4], &count))
    return make_int(env, -EINVAL);
  if (count < 0 || (size_t)count > n_offs || (size_t)count > n_lens) return make_int(env, -EINVAL);
  if (count > MAX_BATCH) count = MAX_BATCH;
  for (int i = 0; i < count; i++)
    if ((uint64_t)offs[i] + lens[i] > slab_len) return make_int(env, -EFAULT);
  if (count == 0) return make_int(env, 0);

  if (get_kind(fd) == FD_TAP) {
    /* One frame: write() is cheaper than an io_uring_enter for it (and the latency path for pings). */
    uring_t *ur = count > 1 ? uring_get(env) : NULL;
    if (ur != NULL) {
      int got = tap_send_uring(ur, fd, slab, offs, lens, count);
      if (got != INT32_MIN) return make_int(env, got);
    }
    if (uring_state != 1) loop_batches++;
    int n = 0;
    while (n < count) {
      ssize_t r = write(fd, slab + offs[n], lens[n]);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (n > 0) break;
        return make_int(env, -errno);
      }
      n++;
    }
    return make_int(env, n);
  }

  ring_t *ring = fd >= 0 && fd < FD_KINDS ? rings[fd] : NULL;
  if (ring) {
    uint8_t *base = ring->map + ring->ring_bytes;
    int n = 0, kicked = 0;
    while (n < count) {
      struct tpacket2_hdr *h = ring_frame(ring, base, ring->tx_head);
      uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (st != TP_STATUS_AVAILABLE) {
        if (kicked) break;
        kicked = 1; /* let the kernel drain what is queued, then look again once */
        if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS && n == 0)
          return make_int(env, -errno);
        continue;
      }
      if (lens[n] > ring->frame_size - RING_TX_DATA_OFF) {
        if (n == 0) return make_int(env, -EMSGSIZE);
        break;
      }
      memcpy((uint8_t *)h + RING_TX_DATA_OFF, slab + offs[n], lens[n]);
      h->tp_len = lens[n];
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      ring->tx_head = ring->tx_head + 1 == ring->frame_nr ? 0 : ring->tx_head + 1;
      n++;
    }
    if (n == 0) return make_int(env, -EAGAIN);
    /* Queued frames leave with this kick (or the next one if the device queue is full right now). */
    if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS) {
      /* Frames stay in the ring for the next kick; nothing to undo. */
    }
    return make_int(env, n);
  }

  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  memset(msgs, 0, sizeof(msgs[0]) * (size_t)count);
  for (int i = 0; i < count; i++) {
    iov[i].iov_base = slab + offs[i];
    iov[i].iov_len = lens[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do n = sendmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

/* close(fd) -> 0 | -errno. Stop any poll on the fd first. */
static napi_value Close(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return make_int(env, -EINVAL);
  set_kind(fd, FD_UNKNOWN);
  ring_free(fd);
  if (fd >= 0 && fd < FD_KINDS) rx_hint[fd] = 0;
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

/* socketPair() -> [fd0, fd1] | -errno: a connected AF_UNIX SOCK_SEQPACKET pair, non-blocking, close-on-exec, both
 * read and written like a TAP fd (one frame per read()/write(), a short buffer cuts the frame). A port back end
 * without a device: xswitchd runs its JIT warm-up over these, so nothing reaches any network. */
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return make_int(env, -errno);
  for (int i = 0; i < 2; i++) {
    set_kind(sv[i], FD_TAP);
    if (sv[i] < FD_KINDS) nowait_mode[sv[i]] = NW_FLAG; /* through the ring like a TAP the addon opened */
  }
  napi_value arr, v;
  napi_create_array_with_length(env, 2, &arr);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, sv[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

/* ioPath() -> { path: "io_uring" | "syscalls", reason?: string, uringFrames, uringBatches, loopBatches }
 * Which path TAP batches take on this thread (sets the ring up if it was not yet), and how many frames / batches
 * each has moved here: tests check that traffic really went the way they meant. */
static napi_value IoPath(napi_env env, napi_callback_info info) {
  uring_t *r = uring_get(env);
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, r != NULL ? "io_uring" : "syscalls", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "path", v);
  if (r == NULL) {
    const char *why = !uring_allowed ? "turned off (XSWITCH_IO_URING=0 or useIoUring(false))" : strerror(uring_errno);
    napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "reason", v);
  }
  napi_create_double(env, (double)uring_frames, &v);
  napi_set_named_property(env, o, "uringFrames", v);
  napi_create_double(env, (double)uring_batches, &v);
  napi_set_named_property(env, o, "uringBatches", v);
  napi_create_double(env, (double)loop_batches, &v);
  napi_set_named_property(env, o, "loopBatches", v);
  napi_create_double(env, (double)uring_moved, &v);
  napi_set_named_property(env, o, "uringMoved", v);
  return o;
}

/* useIoUring(on: boolean) -> 0: TAP batches through io_uring (if the kernel allows) or the read()/write() loops,
 * from the next call on, for the whole process (overrides XSWITCH_IO_URING); off also frees this thread's ring. */
static napi_value UseIoUring(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int on = 0;
  if (!arg_bool(env, argv[0], &on)) return make_int(env, -EINVAL);
  uring_allowed = on;
  uring_free(NULL);
  uring_state = 0;
  uring_errno = 0;
  return make_int(env, 0);
}

/* ---- readiness: uv_poll on the fd, calling back into JS from the event loop ---- */

typedef struct {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  int stopped;  /* uv_poll_stop + uv_close issued */
  int closed;   /* uv_close finished */
  int ext_dead; /* the JS handle was collected */
  int env_gone; /* environment teardown began (worker exit): no JS, no callbacks into this library */
} poll_ctx;

static void cleanup_hook(void *arg);

static void on_closed(uv_handle_t *h) {
  poll_ctx *c = h->data;
  c->closed = 1;
  napi_remove_env_cleanup_hook(c->env, cleanup_hook, c);
  if (c->ext_dead) free(c);
}

static void cleanup_hook(void *arg) {
  /* Teardown: the library may be unloaded before the loop finishes closing handles, so no close callback may point
   * here; the context is left allocated (the loop still holds its uv_poll_t). */
  poll_ctx *c = arg;
  c->env_gone = 1;
  if (!c->stopped) {
    c->stopped = 1;
    uv_poll_stop(&c->h);
    uv_close((uv_handle_t *)&c->h, NULL);
  } else if (!c->closed) {
    c->h.close_cb = NULL; /* a pollStop's close is still pending */
  }
}

static void stop_ctx(poll_ctx *c) {
  if (c->stopped) return;
  c->stopped = 1;
  uv_poll_stop(&c->h);
  napi_delete_reference(c->env, c->cb);
  napi_async_destroy(c->env, c->actx);
  uv_close((uv_handle_t *)&c->h, on_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  poll_ctx *c = h->data;
  if (c->stopped) return;
  napi_env env = c->env;
  /* A failing fd would fire forever: stop, and let the callback's receive() see the error once. */
  if (status < 0) uv_poll_stop(&c->h);
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, result;
  if (napi_get_reference_value(env, c->cb, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv); /* MakeCallback needs an object receiver */
    if (napi_make_callback(env, c->actx, recv, cb, 0, NULL, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void finalize_ctx(napi_env env, void *data, void *hint) {
  poll_ctx *c = data;
  c->ext_dead = 1;
  if (c->env_gone) return;
  if (!c->stopped) stop_ctx(c);
  else if (c->closed) free(c);
}

/* pollStart(fd, callback: () => void) -> handle | -errno
 * Watches fd for readability with uv_poll (level-triggered, on this thread's event loop) and calls callback with
 * no arguments from the loop, never from inside another addon call. A throw in the callback is reported as an
 * uncaught exception. The poll keeps the loop alive until pollStop(handle). */
static napi_value PollStart(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd;
  napi_valuetype t;
  if (!arg_int(env, argv[0], &fd) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return make_int(env, -EINVAL);
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return make_int(env, -EINVAL);
  poll_ctx *c = calloc(1, sizeof *c);
  if (!c) return make_int(env, -ENOMEM);
  c->env = env;
  int r = uv_poll_init(loop, &c->h, fd);
  if (r < 0) {
    free(c);
    return make_int(env, r);
  }
  c->h.data = c;
  napi_value name, ext;
  napi_create_string_utf8(env, "xsnet.poll", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &c->cb);
  napi_async_init(env, NULL, name, &c->actx);
  r = uv_poll_start(&c->h, UV_READABLE, on_poll);
  if (r < 0) {
    napi_delete_reference(env, c->cb);
    napi_async_destroy(env, c->actx);
    c->stopped = 1;
    c->ext_dead = 1;
    uv_close((uv_handle_t *)&c->h, on_closed);
    return make_int(env, r);
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, c);
  napi_create_external(env, c, finalize_ctx, NULL, &ext);
  return ext;
}

/* pollStop(handle) -> 0 | -errno. Idempotent; no callback runs after it returns. */
static napi_value PollStop(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  void *p = NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) return make_int(env, -EINVAL);
  stop_ctx(p);
  return make_int(env, 0);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor d[] = {
      {"openTap", NULL, OpenTap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tapName", NULL, TapName, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tapSetPersist", NULL, TapSetPersist, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linkKind", NULL, LinkKind, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ifindex", NULL, IfIndex, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openPacket", NULL, OpenPacket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvBatch", NULL, RecvBatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendBatch", NULL, SendBatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketPair", NULL, SocketPair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioPath", NULL, IoPath, NULL, NULL, NULL, napi_enumerable, NULL},
      {"useIoUring", NULL, UseIoUring, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStart", NULL, PollStart, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, PollStop, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  napi_value v;
  napi_create_int32(env, TAP_VNET_HDR_LEN, &v);
  napi_set_named_property(env, exports, "TAP_VNET_HDR_LEN", v);
  napi_create_int32(env, TAP_VNET_TNL_HDR_LEN, &v);
  napi_set_named_property(env, exports, "TAP_VNET_TNL_HDR_LEN", v);
  napi_create_int32(env, 10, &v);
  napi_set_named_property(env, exports, "PACKET_VNET_HDR_LEN", v);
  napi_create_int32(env, MAX_BATCH, &v);
  napi_set_named_property(env, exports, "MAX_BATCH", v);
  return exports;
}
