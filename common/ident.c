/* ident.c - certificates on the worker link: loading, nng TLS configuration,
 * the HELLO proof and its check (see ident.h). OpenSSL's libcrypto does the
 * X.509 and signature work; nng's TLS engine (mbedTLS) does the handshake. */
#include "ident.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"
#include "util.h"

#define IDENT_PEM_MAX (1u << 20)

struct ident {
    char *cert_pem, *key_pem, *ca_pem;
    X509 *cert;
    EVP_PKEY *key;
    X509_STORE *ca;
};

static int
read_pem(const char *path, char **out, char *err, size_t errlen)
{
    size_t len = 0;
    if (fs_read_all(path, IDENT_PEM_MAX, out, &len) != 0)
        return errf(CAIRN_EIO, err, errlen, "cannot read %s", path);
    return 0;
}

/* The last OpenSSL error as text. */
static const char *
ossl_why(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "no detail";
    ERR_error_string_n(e, buf, n);
    return buf;
}

int
ident_load(struct ident **out, const char *cert_file, const char *key_file, const char *ca_file,
           char *err, size_t errlen)
{
    char why[256];
    struct stat st;
    if (!cert_file || !key_file || !ca_file)
        return errf(CAIRN_EINVAL, err, errlen,
                    "TLS needs all three of --tls-cert, --tls-key and --tls-ca");
    if (stat(key_file, &st) != 0)
        return errf(CAIRN_EIO, err, errlen, "cannot read %s", key_file);
    if (st.st_mode & 077)
        return errf(CAIRN_EINVAL, err, errlen,
                    "%s is readable by group or others (mode %03o): chmod 600 it", key_file,
                    (unsigned)(st.st_mode & 0777));
    struct ident *id = xcalloc(1, sizeof(*id));
    int rc;
    if ((rc = read_pem(cert_file, &id->cert_pem, err, errlen)) != 0 ||
        (rc = read_pem(key_file, &id->key_pem, err, errlen)) != 0 ||
        (rc = read_pem(ca_file, &id->ca_pem, err, errlen)) != 0) {
        ident_free(id);
        return rc;
    }
    BIO *b = BIO_new_mem_buf(id->cert_pem, -1);
    id->cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!id->cert) {
        errf(CAIRN_EINVAL, err, errlen, "%s: not a PEM certificate (%s)", cert_file,
             ossl_why(why, sizeof(why)));
        ident_free(id);
        return CAIRN_EINVAL;
    }
    b = BIO_new_mem_buf(id->key_pem, -1);
    id->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!id->key || X509_check_private_key(id->cert, id->key) != 1) {
        errf(CAIRN_EINVAL, err, errlen, "%s: not the private key of %s (%s)", key_file, cert_file,
             ossl_why(why, sizeof(why)));
        ident_free(id);
        return CAIRN_EINVAL;
    }
    id->ca = X509_STORE_new();
    b = BIO_new_mem_buf(id->ca_pem, -1);
    int n = 0;
    X509 *c;
    while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(id->ca, c);
        X509_free(c);
        n++;
    }
    BIO_free(b);
    ERR_clear_error(); /* the end of the file */
    if (n == 0) {
        ident_free(id);
        return errf(CAIRN_EINVAL, err, errlen, "%s: no PEM certificate in it", ca_file);
    }
    *out = id;
    return 0;
}

void
ident_free(struct ident *id)
{
    if (!id)
        return;
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
    X509_STORE_free(id->ca);
    if (id->key_pem)
        memset(id->key_pem, 0, strlen(id->key_pem));
    free(id->cert_pem);
    free(id->key_pem);
    free(id->ca_pem);
    free(id);
}

int
ident_tls_config(const struct ident *id, bool server, const char *server_name, void **out,
                 char *err, size_t errlen)
{
    nng_tls_config *cfg = NULL;
    int rv;
    if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) ||
        (rv = nng_tls_config_ca_chain(cfg, id->ca_pem, NULL)) ||
        (rv = nng_tls_config_own_cert(cfg, id->cert_pem, id->key_pem, NULL)) ||
        (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) ||
        (!server && server_name && (rv = nng_tls_config_server_name(cfg, server_name)))) {
        if (cfg)
            nng_tls_config_free(cfg);
        return errf(CAIRN_EINVAL, err, errlen, "TLS configuration: %s", nng_strerror(rv));
    }
    *out = cfg;
    return 0;
}

static char *
hello_text(const char *name, int64_t ts)
{
    return xasprintf("cairn-hello-v1\n%s\n%lld", name, (long long)ts);
}

int
ident_prove(const struct ident *id, const char *name, int64_t now_ms, char **cert_pem,
            char **sig_b64, char *err, size_t errlen)
{
    char why[256];
    char *text = hello_text(name, now_ms);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, id->key) == 1 &&
             EVP_DigestSign(md, NULL, &siglen, (unsigned char *)text, strlen(text)) == 1;
    if (ok) {
        sig = xmalloc(siglen);
        ok = EVP_DigestSign(md, sig, &siglen, (unsigned char *)text, strlen(text)) == 1;
    }
    EVP_MD_CTX_free(md);
    free(text);
    if (!ok) {
        free(sig);
        return errf(CAIRN_EINVAL, err, errlen, "cannot sign HELLO: %s", ossl_why(why, sizeof(why)));
    }
    char *b64 = xmalloc(4 * ((siglen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
    free(sig);
    *cert_pem = xstrdup(id->cert_pem);
    *sig_b64 = b64;
    return 0;
}

/* The certificate's DNS name: its first SAN dNSName, else its CN. */
static char *
cert_name(X509 *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    char *res = NULL;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !res; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            res = xstrndup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                           (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    if (!res) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof(cn)) > 0)
            res = xstrdup(cn);
    }
    return res ? res : xstrdup("");
}

char *
ident_name(const struct ident *id)
{
    return cert_name(id->cert);
}

int
ident_check(const struct ident *id, const char *cert_pem, const char *name, int64_t ts_ms,
            const char *sig_b64, int64_t now_ms, char *err, size_t errlen)
{
    if (!cert_pem || !sig_b64)
        return errf(CAIRN_EAUTH, err, errlen,
                    "HELLO carries no certificate proof (a worker without --tls-cert?)");
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (!c)
        return errf(CAIRN_EAUTH, err, errlen, "HELLO's certificate is not a PEM certificate");
    int rc = 0;
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    if (!vc || X509_STORE_CTX_init(vc, id->ca, c, NULL) != 1) {
        rc = errf(CAIRN_EAUTH, err, errlen, "cannot check the certificate");
    } else if (X509_verify_cert(vc) != 1) {
        rc = errf(CAIRN_EAUTH, err, errlen, "certificate refused: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
    }
    X509_STORE_CTX_free(vc);
    ERR_clear_error();
    if (!rc) {
        char *cn = cert_name(c);
        if (X509_check_host(c, name, strlen(name), X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1)
            rc = errf(CAIRN_EAUTH, err, errlen, "the worker's certificate is for '%s', not '%s'",
                      cn, name);
        free(cn);
    }
    if (!rc && (ts_ms < now_ms - IDENT_SKEW_MS || ts_ms > now_ms + IDENT_SKEW_MS))
        rc =
            errf(CAIRN_EAUTH, err, errlen, "HELLO's time is %lld s away from the scheduler's clock",
                 (long long)((ts_ms - now_ms) / 1000));
    if (!rc) {
        size_t blen = strlen(sig_b64);
        unsigned char *sig = xmalloc(blen + 3);
        int n = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)blen);
        while (n > 0 && blen > 0 && sig_b64[blen - 1] == '=') { /* padding */
            n--;
            blen--;
        }
        char *text = hello_text(name, ts_ms);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY *pub = X509_get0_pubkey(c);
        if (n <= 0 || !md || !pub || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
            EVP_DigestVerify(md, sig, (size_t)n, (unsigned char *)text, strlen(text)) != 1)
            rc = errf(CAIRN_EAUTH, err, errlen, "HELLO's signature does not match its certificate");
        EVP_MD_CTX_free(md);
        free(text);
        free(sig);
        ERR_clear_error();
    }
    X509_free(c);
    return rc;
}
