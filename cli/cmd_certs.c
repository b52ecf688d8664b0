/* cmd_certs.c - `cairn certs init`: a CA and the certificates of a small
 * cluster for the worker link's mutual TLS (docs/operations.md), made with
 * OpenSSL's libcrypto (no `openssl` command needed). Keys are EC P-256 and
 * are written 0600; a DIR that has a CA already keeps it and only gets the
 * certificates it lacks, so the command also adds workers later. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cliutil.h"
#include "fs.h"
#include "opt.h"
#include "util.h"

#define CERTS_DEFAULT_DAYS "825"

struct certs_args {
    const char *scheduler_name, *days;
    struct opt_list workers;
};

static const struct opt certs_init_opts[] = {
    OPT_NUM("--days", NULL, "N", 36500, struct certs_args, days,
            "how long the certificates are valid (default " CERTS_DEFAULT_DAYS ")"),
    OPT_STR("--scheduler-name", NULL, "NAME", struct certs_args, scheduler_name,
            "the scheduler's DNS name (default: this host's name)"),
    OPT_LIST("--worker", NULL, "NAME", struct certs_args, workers,
             "issue a certificate for worker NAME (repeat for several)"),
};

static const struct opt_cmd certs_init_cmd = {
    .name = "certs init",
    .args = "DIR",
    .max_args = 1,
    .about = "Make a CA (DIR/ca.crt, DIR/ca.key) and issue the scheduler's certificate\n"
             "(DIR/scheduler.crt, .key) and one per --worker (DIR/NAME.crt, .key) for the\n"
             "worker link's mutual TLS. Keys are written with mode 0600. A DIR that has a CA\n"
             "keeps it: files that exist are left alone, so run it again to add workers.\n"
             "Copy ca.crt and a worker's NAME.crt and NAME.key to its host; ca.key stays\n"
             "with whoever issues certificates. See docs/operations.md.",
    OPT_TABLE(certs_init_opts),
};

static int certs_init_run(int argc, char **argv);

static const struct opt_sub certs_subs[] = {
    {"init", &certs_init_cmd, certs_init_run},
};

static const struct opt_group certs_group = {
    .name = "certs",
    .about = "Certificates for TLS on the worker link.",
    OPT_SUBS(certs_subs),
};

static int
certs_main(int argc, char **argv)
{
    return opt_dispatch(&certs_group, argc, argv);
}

const struct cli_command cmd_certs = {"certs", certs_main, NULL, &certs_group};

static void
ossl_fail(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "cairn: certs: %s: %s\n", what, e ? buf : "failed");
}

static EVP_PKEY *
new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        ossl_fail("cannot make a key");
    return k;
}

/* Write text to path (created, never replaced) with mode. 0 or -1. */
static int
write_new(const char *path, int mode, void (*put)(BIO *, void *), void *obj)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "cairn: certs: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    fchmod(fd, (mode_t)mode); /* whatever the umask */
    BIO *b = BIO_new(BIO_s_mem());
    put(b, obj);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    int rc = 0;
    for (long off = 0; off < n;) {
        ssize_t w = write(fd, data + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "cairn: certs: cannot write %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        off += w;
    }
    BIO_free(b);
    if (fsync(fd) != 0 || close(fd) != 0)
        rc = -1;
    if (rc)
        unlink(path);
    return rc;
}

static void
put_key(BIO *b, void *k)
{
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static void
put_cert(BIO *b, void *c)
{
    PEM_write_bio_X509(b, c);
}

static void
add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e) {
        X509_add_ext(c, e, -1);
        X509_EXTENSION_free(e);
    }
}

/* A certificate for name and key, signed by ca/cakey (NULL: self-signed CA). */
static X509 *
make_cert(const char *name, EVP_PKEY *key, X509 *ca, EVP_PKEY *cakey, long days, int is_ca,
          int is_server)
{
    X509 *c = X509_new();
    unsigned char serial[16];
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
    BN_free(bn);
    X509_set_version(c, 2);
    X509_gmtime_adj(X509_getm_notBefore(c), -300);
    X509_time_adj_ex(X509_getm_notAfter(c), (int)days, 0, NULL);
    X509_set_pubkey(c, key);
    X509_NAME *n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(c, ca ? X509_get_subject_name(ca) : n);
    X509 *issuer = ca ? ca : c;
    add_ext(c, issuer, NID_subject_key_identifier, "hash");
    add_ext(c, issuer, NID_authority_key_identifier, "keyid:always");
    if (is_ca) {
        add_ext(c, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        char *san = is_server && strcmp(name, "localhost") != 0
                        ? xasprintf("DNS:%s,DNS:localhost", name)
                        : xasprintf("DNS:%s", name);
        add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, issuer, NID_key_usage, "critical,digitalSignature");
        add_ext(c, issuer, NID_ext_key_usage, is_server ? "serverAuth" : "clientAuth");
        add_ext(c, issuer, NID_subject_alt_name, san);
        free(san);
    }
    if (!X509_sign(c, cakey ? cakey : key, EVP_sha256())) {
        ossl_fail("cannot sign a certificate");
        X509_free(c);
        return NULL;
    }
    return c;
}

static int
read_pem_obj(const char *path, int key, void **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cairn: certs: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    *out = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
               : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*out) {
        fprintf(stderr, "cairn: certs: %s is not a PEM %s\n", path,
                key ? "private key" : "certificate");
        return -1;
    }
    return 0;
}

/* A name fit for a file name and a DNS name: letters, digits, '-', '.', '_'. */
static int
name_ok(const char *n)
{
    if (!*n || *n == '.' || *n == '-' || strlen(n) > 253)
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return 0;
    return 1;
}

/* Issue DIR/FILE.crt and DIR/FILE.key for name unless the .crt exists. */
static int
issue(const char *dir, const char *file, const char *name, X509 *ca, EVP_PKEY *cakey, long days,
      int is_server)
{
    char *crt = xasprintf("%s/%s.crt", dir, file), *keyp = xasprintf("%s/%s.key", dir, file);
    int rc = 0;
    if (access(crt, F_OK) == 0) {
        printf("kept %s (it exists)\n", crt);
    } else {
        EVP_PKEY *k = new_key();
        X509 *c = k ? make_cert(name, k, ca, cakey, days, 0, is_server) : NULL;
        if (!c || write_new(keyp, 0600, put_key, k) != 0 || write_new(crt, 0644, put_cert, c) != 0)
            rc = -1;
        else
            printf("issued %s and %s for '%s'\n", crt, keyp, name);
        X509_free(c);
        EVP_PKEY_free(k);
    }
    free(crt);
    free(keyp);
    return rc;
}

static int
certs_init_run(int argc, char **argv)
{
    struct certs_args a = {0};
    int nargs, prc = opt_parse(&certs_init_cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0) {
        opt_list_free(&a.workers);
        return opt_fail(&certs_init_cmd, "missing DIR", NULL);
    }
    const char *dir = argv[1];
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    const char *sname = a.scheduler_name ? a.scheduler_name : host;
    long days = strtol(a.days ? a.days : CERTS_DEFAULT_DAYS, NULL, 10);
    int rc = 0;
    if (!name_ok(sname)) {
        rc = cli_usage_error("certs: bad --scheduler-name '%s' (letters, digits, '-', '.', '_')",
                             sname);
        goto out;
    }
    for (size_t i = 0; i < a.workers.n; i++) {
        if (!name_ok(a.workers.v[i]) || !strcmp(a.workers.v[i], "ca") ||
            !strcmp(a.workers.v[i], "scheduler")) {
            rc = cli_usage_error("certs: bad --worker name '%s' (letters, digits, '-', '.', "
                                 "'_'; not 'ca' or 'scheduler')",
                                 a.workers.v[i]);
            goto out;
        }
    }
    if (fs_mkdirs_mode(dir, 0700) != 0) {
        fprintf(stderr, "cairn: certs: cannot create %s: %s\n", dir, strerror(errno));
        rc = 1;
        goto out;
    }
    char *cacrt = xasprintf("%s/ca.crt", dir), *cakeyp = xasprintf("%s/ca.key", dir);
    X509 *ca = NULL;
    EVP_PKEY *cakey = NULL;
    int have_crt = access(cacrt, F_OK) == 0, have_key = access(cakeyp, F_OK) == 0;
    if (have_crt != have_key) {
        fprintf(stderr, "cairn: certs: %s has %s but not %s: not making a new CA over it\n", dir,
                have_crt ? "ca.crt" : "ca.key", have_crt ? "ca.key" : "ca.crt");
        rc = 1;
    } else if (have_crt) {
        if (read_pem_obj(cacrt, 0, (void **)&ca) != 0 ||
            read_pem_obj(cakeyp, 1, (void **)&cakey) != 0)
            rc = 1;
        else if (X509_check_private_key(ca, cakey) != 1) {
            fprintf(stderr, "cairn: certs: %s is not the key of %s\n", cakeyp, cacrt);
            rc = 1;
        } else {
            printf("kept the CA %s\n", cacrt);
        }
    } else {
        cakey = new_key();
        ca = cakey ? make_cert("Cairn cluster CA", cakey, NULL, NULL, days, 1, 0) : NULL;
        if (!ca || write_new(cakeyp, 0600, put_key, cakey) != 0 ||
            write_new(cacrt, 0644, put_cert, ca) != 0)
            rc = 1;
        else
            printf("made the CA %s and %s\n", cacrt, cakeyp);
    }
    if (!rc && issue(dir, "scheduler", sname, ca, cakey, days, 1) != 0)
        rc = 1;
    for (size_t i = 0; !rc && i < a.workers.n; i++)
        if (issue(dir, a.workers.v[i], a.workers.v[i], ca, cakey, days, 0) != 0)
            rc = 1;
    X509_free(ca);
    EVP_PKEY_free(cakey);
    free(cacrt);
    free(cakeyp);
out:
    opt_list_free(&a.workers);
    return rc;
}
