/* gpu.h - this worker's GPUs (prefix: gpu_).
 *
 * At start the worker finds its NVIDIA GPUs (gpu_discover): the device
 * nodes DEV/nvidiaN (DEV is /dev, or --gpu-dev-dir in tests), with their
 * model names from /proc/driver/nvidia/gpus/<bus>/information, or from
 * `nvidia-smi -L` when the driver's proc files do not say; or the GPUs
 * --gpus 0,1 names by hand. It announces them in HELLO (gpu_hello). The
 * scheduler allocates specific indices to each lease; gpu_attempt turns
 * an allocation into what the attempt's container gets: the device nodes
 * (the GPUs', plus the control devices nvidiactl, nvidia-uvm,
 * nvidia-uvm-tools and nvidia-modeset that exist), the environment
 * (NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER) and,
 * for a rootfs image, the host driver's user-space libraries (`ldconfig
 * -p`'s libnvidia* and libcuda*) and nvidia-smi mounted read-only under
 * GPU_DRIVER_DIR.
 *
 * A struct gpu_set is built once on the loop thread before any attempt
 * and read-only afterwards. Everything it points to is its own (freed by
 * gpu_set_free). A struct gpu_attempt owns its strings and arrays; the
 * runc_device and runc_bind arrays point into it (valid until
 * gpu_attempt_clear).
 */
#ifndef CAIRN_WORKER_GPU_H
#define CAIRN_WORKER_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "runc.h"

/* Where a rootfs image's container finds the host driver's files: a small
 * tmpfs with lib/ (on LD_LIBRARY_PATH) and bin/ (on PATH). */
#define GPU_DRIVER_DIR "/nvidia"

struct gpu {
    int index;   /* the device's minor: DEV/nvidiaINDEX */
    char *model; /* "" if unknown */
    char *dev;   /* host path of its device node */
};

/* A host file the container sees read-only at dest. */
struct gpu_file {
    char *host;
    char *dest;
};

struct gpu_set {
    struct gpu *gpus; /* in index order */
    size_t n;
    char **ctl;       /* host paths of the control devices present */
    size_t nctl;
    char *dev_dir;
    struct gpu_file *files; /* driver libraries and nvidia-smi (rootfs images) */
    size_t nfiles;
};

struct gpu_options {
    const char *declared; /* --gpus "0,1", or NULL: discover */
    const char *model;    /* --gpu-model: the model of every GPU whose driver does not say */
    const char *dev_dir;  /* --gpu-dev-dir; NULL = /dev */
    const char *proc_dir; /* NULL = /proc/driver/nvidia/gpus */
    bool no_driver_files; /* do not look for the driver's libraries (tests) */
};

/* Find the GPUs. *out is set on success (an empty set on a host without
 * GPUs). CAIRN_EINVAL with err: --gpus is not a list of distinct indices
 * 0..254, or names a GPU without a character device node. */
int gpu_discover(struct gpu_set **out, const struct gpu_options *o, char *err, size_t errlen);
void gpu_set_free(struct gpu_set *gs);
/* The GPUs as HELLO announces them: a new array of gs->n (NULL for none;
 * its strings borrowed from gs), freed with free(). */
struct msg_gpu *gpu_hello(const struct gpu_set *gs);

/* What one attempt's container gets for its allocation. */
struct gpu_attempt {
    struct runc_device *devices;
    size_t ndevices;
    struct runc_bind *binds; /* the driver's files (rootfs images only) */
    size_t nbinds;
    const char *scratch_dir; /* GPU_DRIVER_DIR when there are binds, else NULL */
    char **env;              /* "K=V" to set, replacing the task's own */
    size_t nenv;
    char **strings;          /* what the arrays above point to */
    size_t nstrings;
};

/* Prepare an attempt given idx (the lease's gpus). container false: with
 * --isolation none, the environment only (CUDA_VISIBLE_DEVICES then names
 * the host's indices). host_image: the image is the host's, whose own
 * /usr and /lib hold the driver's files already. CAIRN_EINVAL with err if
 * idx names a GPU this worker does not have, or one twice; out is then
 * zeroed. n 0: out is zeroed (nothing to add). */
int gpu_attempt(const struct gpu_set *gs, const int64_t *idx, size_t n, bool container,
                bool host_image, struct gpu_attempt *out, char *err, size_t errlen);
void gpu_attempt_clear(struct gpu_attempt *a);
/* env (NULL-terminated, malloc'd strings, as attempt_env makes it) with
 * a's variables set: each replaces an entry of the same name; PATH and
 * LD_LIBRARY_PATH get GPU_DRIVER_DIR's bin and lib added when there are
 * driver files. Returns the new array (env's strings moved into it). */
char **gpu_env_apply(char **env, const struct gpu_attempt *a);

/* ---- parsers, exposed for the tests ---- */

/* The minor ("Device Minor:") and model ("Model:") of a
 * /proc/driver/nvidia/gpus/<bus>/information file. 0, or -1 if it has no
 * minor. *model is malloc'd ("" when absent). */
int gpu_parse_information(const char *text, int *minor, char **model);
/* The model of GPU index in `nvidia-smi -L` output ("GPU 0: NVIDIA A100
 * (UUID: GPU-…)"), malloc'd, or NULL. */
char *gpu_parse_smi_list(const char *text, int index);
/* The driver's libraries in `ldconfig -p` output: entries whose name
 * starts with libnvidia or libcuda, for this machine's ABI, each name
 * once (the first, as ldconfig prefers it). Appends {path, name} pairs to
 * *files (host = path, dest = GPU_DRIVER_DIR/lib/name). Returns how many. */
size_t gpu_parse_ldconfig(const char *text, struct gpu_file **files, size_t *n);

#endif
