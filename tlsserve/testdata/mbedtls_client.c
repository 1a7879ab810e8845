/*
 * A device-side INLET/1 client over mbedTLS 2.28, configured as ESP-IDF's
 * esp-tls (and Arduino-ESP32's WiFiClientSecure with setCACert) configure it:
 * mbedtls_ssl_config_defaults(client, stream, default preset), TLS 1.2 only
 * (ESP-IDF's default sdkconfig builds no other version), the certificate
 * verified against one CA certificate (setCACert / cacert_pem_buf) with
 * MBEDTLS_SSL_VERIFY_REQUIRED and the host name checked, and the ECDHE suites
 * of ESP-IDF's default build, which has AES (GCM, CCM, CBC) but not
 * ChaCha20-Poly1305 (CONFIG_MBEDTLS_CHACHAPOLY_C is off by default).
 *
 * Usage: mbedtls_client HOST PORT SERVERNAME CAFILE COUNT WINDOW
 * Prints "ok acked=N suite=NAME version=VER" and exits 0, or the error and 1.
 */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int idf_suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	0,
};

static mbedtls_ssl_context ssl;

static void fail(const char *what, int ret) {
	char buf[200];
	mbedtls_strerror(ret, buf, sizeof buf);
	printf("fail %s: -0x%04x %s (verify flags 0x%x)\n", what, (unsigned)-ret, buf, mbedtls_ssl_get_verify_result(&ssl));
	exit(1);
}

static void write_all(const unsigned char *p, size_t n) {
	while (n > 0) {
		int r = mbedtls_ssl_write(&ssl, p, n);
		if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (r < 0)
			fail("write", r);
		p += r, n -= (size_t)r;
	}
}

static unsigned char rbuf[1024];
static size_t rlen, rpos;

static void readline(char *line, size_t max) {
	size_t n = 0;
	for (;;) {
		if (rpos == rlen) {
			int r = mbedtls_ssl_read(&ssl, rbuf, sizeof rbuf);
			if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
				continue;
			if (r <= 0)
				fail("read", r);
			rlen = (size_t)r, rpos = 0;
		}
		char c = (char)rbuf[rpos++];
		if (c == '\n')
			break;
		if (n + 1 < max)
			line[n++] = c;
	}
	line[n] = 0;
}

int main(int argc, char **argv) {
	if (argc != 7) {
		fprintf(stderr, "usage: %s HOST PORT SERVERNAME CAFILE COUNT WINDOW\n", argv[0]);
		return 2;
	}
	long count = atol(argv[5]), window = atol(argv[6]);
	mbedtls_net_context net;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_net_init(&net);
	mbedtls_ssl_init(&ssl);
	mbedtls_ssl_config_init(&conf);
	mbedtls_x509_crt_init(&ca);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	int ret;
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)) != 0)
		fail("seed", ret);
	if ((ret = mbedtls_x509_crt_parse_file(&ca, argv[4])) != 0)
		fail("parse CA", ret);
	if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
		fail("config", ret);
	mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(&conf, idf_suites);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0)
		fail("setup", ret);
	if ((ret = mbedtls_ssl_set_hostname(&ssl, argv[3])) != 0)
		fail("hostname", ret);
	if ((ret = mbedtls_net_connect(&net, argv[1], argv[2], MBEDTLS_NET_PROTO_TCP)) != 0)
		fail("connect", ret);
	mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((ret = mbedtls_ssl_handshake(&ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			fail("handshake", ret);

	char line[256], want[64];
	int n = snprintf(line, sizeof line, "INLET/1 id=mbedtls boot=%x\n", (unsigned)getpid());
	write_all((unsigned char *)line, (size_t)n);
	readline(line, sizeof line);
	if (strcmp(line, "INLET/1 OK last=0") != 0) {
		printf("fail hello answer %s\n", line);
		return 1;
	}
	long acked = 0;
	static char batch[64 * 1024];
	for (long seq = 1; seq <= count;) {
		long first = seq;
		size_t bl = 0;
		for (; seq <= count && seq - first < window; seq++)
			bl += (size_t)snprintf(batch + bl, sizeof batch - bl, "%ld t=21.5;h=40;n=%ld\n", seq, seq);
		write_all((unsigned char *)batch, bl);
		for (long w = first; w < seq; w++) {
			readline(line, sizeof line);
			snprintf(want, sizeof want, "ACK %ld", w);
			if (strcmp(line, want) != 0) {
				printf("fail got %s want %s\n", line, want);
				return 1;
			}
			acked++;
		}
	}
	printf("ok acked=%ld suite=%s version=%s\n", acked, mbedtls_ssl_get_ciphersuite(&ssl), mbedtls_ssl_get_version(&ssl));
	mbedtls_ssl_close_notify(&ssl);
	mbedtls_net_free(&net);
	return 0;
}
