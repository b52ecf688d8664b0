/* ident.h - a peer's certificate identity on the worker link (prefix: ident_).
 *
 * The link runs over nng's TLS transport (tls+tcp://) with mutual
 * authentication: each side presents a certificate issued by the cluster's
 * CA (`cairn certs init`) and the handshake refuses a peer whose chain does
 * not lead to that CA or whose certificate has expired. nng (1.5) does not
 * tell the scheduler which certificate a connection presented, so the
 * worker also proves its name inside HELLO: it sends its certificate (PEM),
 * the time, and a signature made with its key over "cairn-hello-v1\n" NAME
 * "\n" TIME. The scheduler checks the chain against the CA again (and the
 * validity dates), that NAME is the certificate's DNS name (a SAN dNSName,
 * or the CN when there is none), that the signature is good and that TIME
 * is within IDENT_SKEW_MS of its clock. The HELLO travels inside the TLS
 * session, so no third party sees it to replay it.
 */
#ifndef CAIRN_IDENT_H
#define CAIRN_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENT_SKEW_MS (5 * 60 * 1000)

struct ident;

/* Read a certificate, its private key and the CA certificate(s) (PEM files).
 * All three are required. The key file must not be readable by group or
 * others. Returns 0, CAIRN_EIO or CAIRN_EINVAL (err says which file and
 * why). *out is set only on success. */
int ident_load(struct ident **out, const char *cert_file, const char *key_file, const char *ca_file,
               char *err, size_t errlen);
void ident_free(struct ident *id);

/* An nng TLS configuration (an nng_tls_config *, returned as void *) for a
 * listener (server true: a client certificate is required) or a dialer
 * (server_name: the name the scheduler's certificate must carry). The
 * caller frees it with nng_tls_config_free once it is set on the
 * listener/dialer. Returns 0 or CAIRN_EINVAL with err set. */
int ident_tls_config(const struct ident *id, bool server, const char *server_name, void **out,
                     char *err, size_t errlen);

/* The proof a worker puts in HELLO: its certificate (PEM, malloc'd) and a
 * signature (base64, malloc'd) over name and now_ms. 0 or CAIRN_EINVAL. */
int ident_prove(const struct ident *id, const char *name, int64_t now_ms, char **cert_pem,
                char **sig_b64, char *err, size_t errlen);

/* Check a proof against id's CA (see the top). Returns 0, or CAIRN_EAUTH
 * with err giving the reason ("certificate is for 'w2', not 'w1'"). */
int ident_check(const struct ident *id, const char *cert_pem, const char *name, int64_t ts_ms,
                const char *sig_b64, int64_t now_ms, char *err, size_t errlen);

/* The certificate's own name (a SAN dNSName or the CN), malloc'd. */
char *ident_name(const struct ident *id);

#endif
