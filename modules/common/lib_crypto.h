/* SPDX-License-Identifier: Apache-2.0 */
/* libcrypto (OpenSSL), opened on first use (lazylib.h): SHA-256 for digests, base64, SHA-1 for WebSocket. */
#ifndef BERTH_COMMON_LIB_CRYPTO_H
#define BERTH_COMMON_LIB_CRYPTO_H

/* SHA256_CTX is the digest whose state can be saved and resumed (content-local), and EVP leaves per-thread
 * state on pool threads: the low-level calls stay, deprecated or not */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lazylib.h"

#define LIBCRYPTO_SYMBOLS(X) \
    X(SHA256_Init)           \
    X(SHA256_Update)         \
    X(SHA256_Final)          \
    X(SHA256)                \
    X(EVP_Digest)            \
    X(EVP_EncodeBlock)       \
    X(EVP_DecodeBlock)       \
    X(EVP_sha1)              \
    X(EVP_sha256)            \
    X(EVP_sha512)            \
    X(OPENSSL_thread_stop)

LAZYLIB_DECLARE(libcrypto, LIBCRYPTO_SYMBOLS)

#endif
