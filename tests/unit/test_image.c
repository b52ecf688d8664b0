/* Tests for the worker's image modules: blobs verified on write
 * (image_blob), layers with whiteouts (image_unpack), an OCI layout made
 * here unpacked once (image), and the config applied to a task
 * (image_job). Layers are tar files written with libarchive. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "err.h"
#include "image.h"
#include "image_blob.h"
#include "image_job.h"
#include "image_unpack.h"
#include "testlib.h"
#include "util.h"

struct fx {
    struct tl_dir d;
};

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    if (tl_dir_make(&f->d, "image") != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    tl_dir_remove(&f->d);
    free(f);
    return 0;
}

static void
sha256_of(const void *buf, size_t n, char out[72])
{
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(buf, n, md, &ml, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* One tar entry: type 'f' file (text), 'd' folder, 'l' symlink (text =
 * target), 'h' hard link (text = target path). */
struct ent {
    char type;
    const char *path;
    const char *text;
    int mode;
};

static void
write_tar(const char *path, const struct ent *e, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *x = archive_entry_new();
        archive_entry_set_pathname(x, e[i].path);
        archive_entry_set_perm(x, (mode_t)(e[i].mode ? e[i].mode : 0644));
        archive_entry_set_mtime(x, 1700000000, 0);
        size_t len = 0;
        switch (e[i].type) {
        case 'd':
            archive_entry_set_filetype(x, AE_IFDIR);
            archive_entry_set_perm(x, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(x, AE_IFLNK);
            archive_entry_set_symlink(x, e[i].text);
            break;
        case 'h':
            archive_entry_set_filetype(x, AE_IFREG);
            archive_entry_set_hardlink(x, e[i].text);
            break;
        default:
            archive_entry_set_filetype(x, AE_IFREG);
            len = e[i].text ? strlen(e[i].text) : 0;
            archive_entry_set_size(x, (la_int64_t)len);
        }
        assert_int_equal(archive_write_header(a, x), ARCHIVE_OK);
        if (len)
            assert_int_equal(archive_write_data(a, e[i].text, len), (la_ssize_t)len);
        archive_entry_free(x);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static const struct ent base[] = {
    {'d', "etc", NULL, 0},
    {'f', "etc/passwd", "root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\n", 0},
    {'f', "etc/group", "users:x:100:\nstaff:x:50:\n", 0},
    {'f', "gone.txt", "gone", 0},
    {'d', "opaque", NULL, 0},
    {'f', "opaque/old.txt", "old", 0},
    {'f', "keep.txt", "keep", 0600},
    {'d', "dir", NULL, 0},
    {'f', "dir/replaced", "file", 0},
};
static const struct ent top[] = {
    {'f', ".wh.gone.txt", "", 0},      {'f', "opaque/.wh..wh..opq", "", 0},
    {'f', "opaque/new.txt", "new", 0}, {'f', "added.txt", "added", 0},
    {'h', "hard.txt", "added.txt", 0}, {'l', "link", "/keep.txt", 0},
};

static void
test_unpack_whiteouts(void **state)
{
    struct fx *f = *state;
    char *l1 = tl_dir_file(&f->d, "l1.tar"), *l2 = tl_dir_file(&f->d, "l2.tar");
    char *root = tl_dir_file(&f->d, "rootfs");
    char err[512];
    write_tar(l1, base, sizeof(base) / sizeof(base[0]));
    write_tar(l2, top, sizeof(top) / sizeof(top[0]));
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_equal(imgunpack_layer(root, l1, err, sizeof(err)), 0);
    assert_int_equal(imgunpack_layer(root, l2, err, sizeof(err)), 0);
    char *p;
    struct stat st, st2;
#define AT(rel) (free(p), p = tl_dir_file(&f->d, "rootfs/%s", rel))
    p = NULL;
    assert_false(tl_exists(AT("gone.txt")));
    assert_false(tl_exists(AT(".wh.gone.txt")));
    assert_false(tl_exists(AT("opaque/old.txt")));
    assert_false(tl_exists(AT("opaque/.wh..wh..opq")));
    assert_true(tl_exists(AT("opaque/new.txt")));
    assert_true(tl_exists(AT("keep.txt")));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(AT("added.txt"), &st), 0);
    assert_int_equal(stat(AT("hard.txt"), &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_int_equal(lstat(AT("link"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    free(p);
    free(l1);
    free(l2);
    free(root);
#undef AT
}

static void
test_unpack_refuses_escape(void **state)
{
    struct fx *f = *state;
    char *l = tl_dir_file(&f->d, "evil.tar"), *root = tl_dir_file(&f->d, "rootfs");
    char err[512] = "";
    static const struct ent evil[] = {{'f', "../escaped.txt", "x", 0}};
    write_tar(l, evil, 1);
    assert_int_equal(mkdir(root, 0755), 0);
    assert_int_not_equal(imgunpack_layer(root, l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "'..'"));
    char *out = tl_dir_file(&f->d, "escaped.txt");
    assert_false(tl_exists(out));
    free(out);
    free(l);
    free(root);
}

static void
test_blob_verified(void **state)
{
    struct fx *f = *state;
    char *dir = tl_dir_file(&f->d, "images");
    char good[72], err[512];
    sha256_of("hello", 5, good);
    struct imgblob_writer *w;
    assert_int_equal(imgblob_writer_open(&w, dir, good, 5, err, sizeof(err)), 0);
    assert_int_equal(imgblob_writer_write(w, "hellO", 5, err, sizeof(err)), 0);
    assert_int_equal(imgblob_writer_commit(w, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "refused"));
    assert_false(imgblob_has(dir, good));
    assert_int_equal(imgblob_writer_open(&w, dir, good, 5, err, sizeof(err)), 0);
    assert_int_equal(imgblob_writer_write(w, "hello!", 6, err, sizeof(err)), CAIRN_EPROTO);
    imgblob_writer_abort(w);
    assert_int_equal(imgblob_writer_open(&w, dir, good, 5, err, sizeof(err)), 0);
    assert_int_equal(imgblob_writer_write(w, "hello", 5, err, sizeof(err)), 0);
    assert_int_equal(imgblob_writer_commit(w, err, sizeof(err)), 0);
    assert_true(imgblob_has(dir, good));
    free(dir);
}

/* Put a file in a layout's blobs; its digest in out. */
static void
layout_blob(struct fx *f, const char *layout, const void *buf, size_t n, char out[72])
{
    sha256_of(buf, n, out);
    char *p = tl_dir_file(&f->d, "%s/blobs/sha256/%s", layout, out + 7);
    tl_write_file(p, buf, n);
    free(p);
}

static void
test_layout_image(void **state)
{
    struct fx *f = *state;
    char err[1024];
    char *l1 = tl_dir_file(&f->d, "l1.tar"), *l2 = tl_dir_file(&f->d, "l2.tar");
    write_tar(l1, base, sizeof(base) / sizeof(base[0]));
    write_tar(l2, top, sizeof(top) / sizeof(top[0]));
    size_t n1, n2;
    char *b1 = tl_read_file(l1, &n1), *b2 = tl_read_file(l2, &n2);
    char *bd = tl_dir_file(&f->d, "layout/blobs/sha256");
    assert_int_equal(tl_sh("mkdir -p '%s'", bd), 0);
    char d1[72], d2[72], dc[72], dm[72];
    layout_blob(f, "layout", b1, n1, d1);
    layout_blob(f, "layout", b2, n2, d2);
    const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":"
                      "[\"PATH=/bin\",\"A=image\"],\"Entrypoint\":[\"/bin/ep\"],\"Cmd\":"
                      "[\"default\"],\"WorkingDir\":\"/opaque\",\"User\":\"app:staff\"}}";
    layout_blob(f, "layout", cfg, strlen(cfg), dc);
    char *man = xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
        "\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/"
        "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu},{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
        dc, strlen(cfg), d1, n1, d2, n2);
    layout_blob(f, "layout", man, strlen(man), dm);
    char *idx = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
                          "vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
                          "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}",
                          dm, strlen(man));
    /* a multi-platform index: another platform first, then ours; and one
     * with another platform only */
    char *mi =
        xasprintf("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                  "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                  "\"digest\":\"sha256:%064d\",\"size\":1,\"platform\":{\"os\":\"linux\","
                  "\"architecture\":\"s390x-not-ours\"}},{\"mediaType\":\"application/"
                  "vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
                  "\"os\":\"linux\",\"architecture\":\"%s\"}}]}",
                  0, dm, strlen(man), image_arch());
    char dmi[72], dfo[72];
    layout_blob(f, "layout", mi, strlen(mi), dmi);
    char *fo = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"application/"
                         "vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":"
                         "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
                         "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":"
                         "\"s390x-not-ours\"}}]}",
                         dm);
    layout_blob(f, "layout", fo, strlen(fo), dfo);
    char *idx2 = xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
        "vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
        "\"org.opencontainers.image.ref.name\":\"v1\"}},{\"mediaType\":\"application/"
        "vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
        "\"org.opencontainers.image.ref.name\":\"multi\"}},{\"mediaType\":\"application/"
        "vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":{"
        "\"org.opencontainers.image.ref.name\":\"foreign\"}}]}",
        dm, strlen(man), dmi, strlen(mi), dfo, strlen(fo));
    char *ip = tl_dir_file(&f->d, "layout/index.json");
    tl_write_text(ip, idx2);

    char *images = tl_dir_file(&f->d, "images");
    struct image_opts o = {.dir = images};
    char *ref = xasprintf("oci:%s/layout:v1", f->d.path);
    struct image_info info;
    assert_int_equal(image_prepare(&o, ref, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_string_equal(info.digest, dm);
    assert_string_equal(info.manifest, dm);
    char *want = xasprintf("%s/%s/rootfs", images, dm + 7);
    assert_string_equal(info.rootfs, want);
    char *added = xasprintf("%s/added.txt", info.rootfs);
    assert_true(tl_exists(added));

    /* the config, applied */
    const char *const cmd[] = {"python", "x.py", NULL};
    char **argv = imgjob_argv(&info, cmd);
    assert_string_equal(argv[0], "/bin/ep");
    assert_string_equal(argv[1], "python");
    assert_null(argv[3]);
    imgjob_strv_free(argv);
    const char *const none[] = {NULL};
    argv = imgjob_argv(&info, none);
    assert_string_equal(argv[1], "default");
    imgjob_strv_free(argv);
    char **env = xcalloc(3, sizeof(*env));
    env[0] = xstrdup("A=task");
    env[1] = xstrdup("B=task");
    env = imgjob_env(&info, env);
    assert_string_equal(env[0], "PATH=/bin");
    assert_string_equal(env[1], "A=task");
    assert_string_equal(env[2], "B=task");
    assert_null(env[3]);
    imgjob_strv_free(env);
    bool has;
    uint32_t uid, gid;
    assert_int_equal(imgjob_user(&info, &has, &uid, &gid, err, sizeof(err)), 0);
    assert_true(has);
    assert_int_equal(uid, 1000);
    assert_int_equal(gid, 50);
    assert_string_equal(info.workdir, "/opaque");
    image_info_clear(&info);

    /* again: from the cache, the same folder; a bad tag names the layout */
    assert_int_equal(image_prepare(&o, ref, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_string_equal(info.rootfs, want);

    /* a digest-pinned registry reference prepared once is reused without
     * a registry (none listens at port 1): in use (its lock held shared),
     * its config kept; a tag is never taken from the cache */
    struct imgjob_cache *c = imgjob_cache_new();
    char *pin = xasprintf("127.0.0.1:1/t/img@%s", dm);
    struct image_info again;
    assert_false(imgjob_cached(c, &o, pin, &again));
    imgjob_cache_put(c, pin, &info);
    imgjob_cache_put(c, "127.0.0.1:1/t/img:v1", &info);
    assert_false(imgjob_cached(c, &o, "127.0.0.1:1/t/img:v1", &again));
    image_info_clear(&info);
    assert_true(imgjob_cached(c, &o, pin, &again));
    assert_string_equal(again.rootfs, want);
    assert_string_equal(again.digest, dm);
    assert_string_equal(again.workdir, "/opaque");
    assert_string_equal(again.env[0], "PATH=/bin");
    assert_int_equal(again.bytes_pulled, 0);
    char *lockp = xasprintf("%s/locks/%s.lock", images, dm + 7);
    int lfd = open(lockp, O_RDWR | O_CLOEXEC);
    assert_true(lfd >= 0);
    assert_int_not_equal(flock(lfd, LOCK_EX | LOCK_NB), 0); /* in use: not collectable */
    image_info_clear(&again);
    assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
    /* held exclusively (the collector, an unpack): not now, no waiting */
    assert_false(imgjob_cached(c, &o, pin, &again));
    flock(lfd, LOCK_UN);
    close(lfd);
    /* gone (collected): not from the cache either */
    char *final = xasprintf("%s/%s", images, dm + 7), *moved = xasprintf("%s.x", final);
    assert_int_equal(rename(final, moved), 0);
    assert_false(imgjob_cached(c, &o, pin, &again));
    assert_int_equal(rename(moved, final), 0);
    assert_true(imgjob_cached(c, &o, pin, &again));
    image_info_clear(&again);
    imgjob_cache_free(c);
    free(final);
    free(moved);
    free(lockp);
    free(pin);
    char *bad = xasprintf("oci:%s/layout:v2", f->d.path);
    assert_int_not_equal(image_prepare(&o, bad, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "has no image tagged 'v2'"));
    /* the index picks our platform: the same image, under the index's digest */
    char *multi = xasprintf("oci:%s/layout:multi", f->d.path);
    assert_int_equal(image_prepare(&o, multi, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_string_equal(info.digest, dmi);
    assert_string_equal(info.manifest, dm);
    assert_string_equal(info.rootfs, want);
    image_info_clear(&info);
    char *foreign = xasprintf("oci:%s/layout:foreign", f->d.path);
    assert_int_not_equal(image_prepare(&o, foreign, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "it has: linux/s390x-not-ours"));
    /* without a tag, a layout of three images cannot say which */
    char *notag = xasprintf("oci:%s/layout", f->d.path);
    assert_int_not_equal(image_prepare(&o, notag, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "holds 3 images"));
    free(notag);
    free(foreign);
    free(multi);
    free(mi);
    free(fo);
    free(idx2);

    /* a layer that does not match its digest is refused, nothing unpacked */
    char *images2 = tl_dir_file(&f->d, "images2");
    struct image_opts o2 = {.dir = images2};
    char *l1p = tl_dir_file(&f->d, "layout/blobs/sha256/%s", d1 + 7);
    b1[n1 / 2] ^= 1;
    tl_write_file(l1p, b1, n1);
    assert_int_not_equal(image_prepare(&o2, ref, NULL, NULL, &info, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "refused"));
    char *final2 = xasprintf("%s/%s", images2, dm + 7);
    assert_false(tl_exists(final2));

    free(final2);
    free(l1p);
    free(images2);
    free(bad);
    free(added);
    free(want);
    free(ref);
    free(images);
    free(ip);
    free(idx);
    free(man);
    free(bd);
    free(b1);
    free(b2);
    free(l1);
    free(l2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unpack_whiteouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_refuses_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_image, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
